/** `doctor`: every prerequisite of a real run, each failing one with its fix, never a secret value. */
import { chmodSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { formatDoctorReport, readFlatYaml, runDoctorChecks, type DoctorCheck } from '../src/doctor/doctorChecks.js';
import { resolveAiopslabPython } from '../src/bridge/aiopslabPython.js';
import { createStandins, type Standins } from './fixtures/standins.js';
import { FIXTURE_AIOPSLAB_DIR, realPython } from './fixtures/agents.js';

const KEY = 'sk-or-v1-doctor-test-key-value';
let standins: Standins;
let python: string;
let scratch: string;
beforeAll(() => {
  standins = createStandins();
  python = realPython();
  scratch = mkdtempSync(path.join(os.tmpdir(), 'aiopslab-doctor-'));
});
afterAll(() => {
  standins.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

const byName = (checks: DoctorCheck[]) => Object.fromEntries(checks.map((c) => [c.name, c]));

function checkoutWith(name: string, configYml: string | null): string {
  const dir = path.join(scratch, name);
  cpSync(FIXTURE_AIOPSLAB_DIR, dir, { recursive: true });
  const file = path.join(dir, 'aiopslab', 'config.yml');
  if (configYml === null) rmSync(file);
  else writeFileSync(file, configYml);
  return dir;
}

describe('with everything in place (stand-ins on PATH, the fixture checkout)', () => {
  let checks: DoctorCheck[];
  beforeAll(async () => {
    const config = loadConfig({ AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR, AIOPSLAB_PYTHON: python, OPENROUTER_API_KEY: KEY });
    checks = await runDoctorChecks(config, { env: { ...standins.env, PYTHONDONTWRITEBYTECODE: '1' } });
  }, 60_000);

  it('every check passes', () => {
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks.map((c) => c.name)).toEqual(['node', 'python', 'aiopslab_dir', 'aiopslab_applications', 'aiopslab_config', 'aiopslab_import', 'kind', 'kubectl', 'helm', 'docker', 'kind_config', 'llm_key']);
    const c = byName(checks);
    expect(c.python!.detail).toMatch(/is Python 3\.1[12]\./);
    expect(c.aiopslab_import!.detail).toContain('lists 14 problems (1 Docker-deployed)');
    expect(c.kind!.detail).toBe('kind v0.27.0 go1.23.6 linux/amd64');
    expect(c.docker!.detail).toMatch(/^Docker Engine \d+\.\d+\.\d+ reachable$/);
    expect(c.node!.neededFor).toBe('service');
    expect(c.kubectl!.neededFor).toBe('real-runs');
  });

  it('names the LLM key variable and never prints its value', () => {
    expect(byName(checks).llm_key!.detail).toBe('OPENROUTER_API_KEY is set');
    expect(JSON.stringify(checks)).not.toContain(KEY);
    expect(formatDoctorReport(checks)).not.toContain(KEY);
    expect(formatDoctorReport(checks)).toContain('Everything a real run needs is in place.');
  });

});

describe('a tool that hangs', () => {
  it('is cut off at the probe time limit instead of stalling the doctor', async () => {
    standins.delay('kind-version', 60);
    try {
      const config = loadConfig({ AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR, AIOPSLAB_PYTHON: python, OPENROUTER_API_KEY: KEY });
      const t0 = Date.now();
      const c = byName(await runDoctorChecks(config, { env: standins.env }));
      expect(Date.now() - t0).toBeLessThan(40_000);
      expect(c.kind).toMatchObject({ ok: false, detail: 'kind did not answer within 10 s' });
      expect(c.kubectl!.ok).toBe(true);
    } finally {
      standins.clearInjections();
    }
  }, 60_000);
});

describe('missing pieces, each with its fix', () => {
  it('tools not on PATH', async () => {
    const emptyBin = mkdtempSync(path.join(scratch, 'bin-'));
    const config = loadConfig({ AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR, AIOPSLAB_PYTHON: python, OPENROUTER_API_KEY: KEY });
    const c = byName(await runDoctorChecks(config, { env: { ...standins.env, PATH: emptyBin } }));
    for (const tool of ['kind', 'kubectl', 'helm', 'docker']) {
      expect(c[tool]!.ok, tool).toBe(false);
      expect(c[tool]!.detail).toBe(`${tool} was not found on PATH`);
      expect(c[tool]!.fix).toMatch(/Install/);
    }
    // Python is given by absolute path, so AIOpsLab still imports.
    expect(c.aiopslab_import!.ok).toBe(true);
  }, 60_000);

  it('a Docker daemon that cannot be reached', async () => {
    standins.fail('docker-info', 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?', { times: 1 });
    const config = loadConfig({ AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR, AIOPSLAB_PYTHON: python, OPENROUTER_API_KEY: KEY });
    const c = byName(await runDoctorChecks(config, { env: standins.env }));
    expect(c.docker!.ok).toBe(false);
    expect(c.docker!.detail).toContain('Cannot connect to the Docker daemon');
    expect(c.docker!.fix).toContain('start its daemon');
  }, 60_000);

  it('no AIOPSLAB_DIR, no LLM key', async () => {
    const c = byName(await runDoctorChecks(loadConfig({ AIOPSLAB_PYTHON: python }), { env: standins.env }));
    expect(c.aiopslab_dir).toMatchObject({ ok: false, detail: 'AIOPSLAB_DIR is not set' });
    expect(c.aiopslab_dir!.fix).toContain('git clone --recurse-submodules https://github.com/microsoft/AIOpsLab');
    expect(c.aiopslab_import!.ok).toBe(false);
    expect(c.llm_key).toMatchObject({ ok: false, detail: 'no LLM provider is configured' });
    expect(c.llm_key!.fix).toContain('OPENROUTER_API_KEY');
    expect(formatDoctorReport(Object.values(c))).toMatch(/check\(s\) failed; the service runs/);
  }, 60_000);

  it('no aiopslab/config.yml: reported with the command that creates it, not written', async () => {
    const dir = checkoutWith('no-config', null);
    const c = byName(await runDoctorChecks(loadConfig({ AIOPSLAB_DIR: dir, AIOPSLAB_PYTHON: python }), { env: standins.env }));
    expect(c.aiopslab_config!.ok).toBe(false);
    expect(c.aiopslab_config!.detail).toContain('does not exist');
    expect(c.aiopslab_config!.fix).toContain('cp aiopslab/config.yml.example aiopslab/config.yml');
    expect(c.aiopslab_import!.detail).toMatch(/^not checked/);
  }, 60_000);

  it('a config.yml that would send agent commands elsewhere or call the LLM judge', async () => {
    const dir = checkoutWith('bad-config', 'k8s_host: localhost\ndata_dir: data\nqualitative_eval: true\nprint_session: false\n');
    const c = byName(await runDoctorChecks(loadConfig({ AIOPSLAB_DIR: dir, AIOPSLAB_PYTHON: python }), { env: standins.env }));
    expect(c.aiopslab_config!.ok).toBe(false);
    expect(c.aiopslab_config!.detail).toContain('k8s_host is "localhost"');
    expect(c.aiopslab_config!.detail).toContain('qualitative_eval is on');
    expect(c.aiopslab_config!.fix).toContain('k8s_host: kind, qualitative_eval: false');
  }, 60_000);

  it('a Python of the wrong version, and one that does not exist', async () => {
    const fake = path.join(scratch, 'python3.10');
    writeFileSync(fake, '#!/bin/sh\necho 3.10.14\n');
    chmodSync(fake, 0o755);
    const old = byName(await runDoctorChecks(loadConfig({ AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR, AIOPSLAB_PYTHON: fake }), { env: standins.env }));
    expect(old.python).toMatchObject({ ok: false, detail: `${fake} is Python 3.10.14 (AIOpsLab needs 3.11 or 3.12)` });
    expect(old.python!.fix).toContain('AIOPSLAB_PYTHON');
    const none = byName(await runDoctorChecks(loadConfig({ AIOPSLAB_DIR: FIXTURE_AIOPSLAB_DIR, AIOPSLAB_PYTHON: '/nonexistent/python3' }), { env: standins.env }));
    expect(none.python).toMatchObject({ ok: false, detail: '/nonexistent/python3: /nonexistent/python3 does not exist or is not executable' });
  }, 60_000);
});

describe('helpers', () => {
  it('resolves the AIOpsLab Python: explicit, then the checkout\'s .venv, then python3', () => {
    expect(resolveAiopslabPython({ aiopslabPython: '/x/python', aiopslabDir: null })).toBe('/x/python');
    expect(resolveAiopslabPython({ aiopslabPython: null, aiopslabDir: FIXTURE_AIOPSLAB_DIR })).toBe('python3');
    const dir = path.join(scratch, 'with-venv');
    cpSync(FIXTURE_AIOPSLAB_DIR, dir, { recursive: true });
    const venvPython = path.join(dir, '.venv', 'bin', 'python');
    cpSync(python, venvPython);
    expect(resolveAiopslabPython({ aiopslabPython: null, aiopslabDir: dir })).toBe(venvPython);
  });

  it('reads flat YAML with comments and quotes', () => {
    expect(readFlatYaml("k8s_host: 'kind' # comment\ndata_dir: data\n# note: x\nqualitative_eval: false")).toEqual({ k8s_host: 'kind', data_dir: 'data', qualitative_eval: 'false' });
  });
});
