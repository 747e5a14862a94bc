/** Which Python runs AIOpsLab: the interpreter of the user's AIOpsLab environment. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';

/**
 * AIOPSLAB_PYTHON, else the checkout's own virtualenv (<AIOPSLAB_DIR>/.venv/bin/python, which
 * `poetry config virtualenvs.in-project true` or `python -m venv .venv` create), else `python3`.
 * Poetry's default out-of-tree virtualenv is not guessed (asking poetry is slow); `doctor` prints
 * the command that finds it.
 */
export function resolveAiopslabPython(config: Pick<Config, 'aiopslabPython' | 'aiopslabDir'>): string {
  if (config.aiopslabPython) return config.aiopslabPython;
  if (config.aiopslabDir) {
    for (const candidate of [path.join(config.aiopslabDir, '.venv', 'bin', 'python'), path.join(config.aiopslabDir, '.venv', 'Scripts', 'python.exe')]) {
      if (existsSync(candidate)) return candidate;
    }
  }
  return 'python3';
}
