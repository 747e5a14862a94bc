/** The benchmarks in run order, with their full and --quick sizes. */
import type { BenchServer } from './benchDatabase.js';
import type { BenchOptions, BenchResult } from './benchResult.js';
import { benchApi } from './apiBench.js';
import { benchConversationAppend } from './conversationAppend.js';
import { benchExecutorOverhead } from './executorOverhead.js';
import { benchExport } from './exportBench.js';
import { benchNoopThroughput } from './noopThroughput.js';
import { benchSubmitToStart } from './submitToStart.js';

export type BenchmarkId = 'submit_to_start' | 'noop_throughput' | 'executor_overhead' | 'conversation_append' | 'api' | 'export';

export interface Benchmark {
  id: BenchmarkId;
  run(server: BenchServer, o: BenchOptions): Promise<BenchResult>;
}

export const BENCHMARKS: Benchmark[] = [
  {
    id: 'submit_to_start',
    run: (s, o) => benchSubmitToStart(s, o.quick ? { samples: 40, warmup: 5, workers: 4, gapMs: 10 } : { samples: 300, warmup: 20, workers: 4, gapMs: 20 }, o),
  },
  {
    id: 'noop_throughput',
    run: (s, o) => benchNoopThroughput(s, o.quick ? { tasks: 600, workers: 8, rounds: 1 } : { tasks: 5000, workers: 8, rounds: 3, analyzedRounds: 1 }, o),
  },
  {
    id: 'executor_overhead',
    run: (s, o) => benchExecutorOverhead(s, o.quick ? { tasks: 2, warmup: 1 } : { tasks: 30, warmup: 2 }, o),
  },
  {
    id: 'conversation_append',
    run: (s, o) => benchConversationAppend(s, { conversations: o.quick ? 1 : 3, messages: 1000, messageBytes: 8192 }, o),
  },
  {
    id: 'api',
    run: (s, o) => benchApi(s, o.quick
      ? { tasks: 20_000, pending: 200, listSamples: 8, statsSamples: 8, postSeconds: 3, postConnections: 50, apiHost: 'child' }
      : { tasks: 1_000_000, pending: 5_000, listSamples: 60, statsSamples: 30, postSeconds: 15, postConnections: 50, apiHost: 'child' }, o),
  },
  {
    id: 'export',
    run: (s, o) => benchExport(s, { conversations: o.quick ? 1_000 : 10_000, apiHost: 'child' }, o),
  },
];
