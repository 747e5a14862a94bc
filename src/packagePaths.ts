/** Locations inside the installed package, valid both from src/ (tests) and dist/src/ (built). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'migrations'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot locate the aiopslab-executor package root');
    dir = up;
  }
}

export const PACKAGE_ROOT = findRoot();
export const MIGRATIONS_DIR = path.join(PACKAGE_ROOT, 'migrations');
export const BRIDGE_SCRIPT = path.join(PACKAGE_ROOT, 'src', 'bridge', 'python', 'aiopslab_bridge.py');
export const WEB_DIST_DIR = path.join(PACKAGE_ROOT, 'web', 'dist');
export const PROBLEM_IDS_FILE = path.join(PACKAGE_ROOT, 'src', 'catalog', 'problem-ids.txt');
