/**
 * A worker's private files: `<stateDir>/workers/<workerId>/kubeconfig` and a private HOME whose
 * `.kube/config` is the same kubeconfig. Nothing here ever reads or writes a shared kubeconfig.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface WorkerFiles {
  dir: string;
  home: string;
  kubeconfig: string;
  homeKubeconfig: string;
}

/** The kubeconfig kubectl and AIOpsLab's observer read from a HOME when nothing else is named. */
export function homeKubeconfigOf(home: string): string {
  return path.join(home, '.kube', 'config');
}

export function workerFiles(stateDir: string, workerId: string): WorkerFiles {
  const dir = path.join(path.resolve(stateDir), 'workers', workerId);
  const home = path.join(dir, 'home');
  return { dir, home, kubeconfig: path.join(dir, 'kubeconfig'), homeKubeconfig: homeKubeconfigOf(home) };
}

async function writeAtomic(file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  // A reader (a bridge starting up) must never see a half-written kubeconfig.
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode: 0o600 });
  await rename(tmp, file);
}

export async function prepareWorkerFiles(files: WorkerFiles): Promise<void> {
  await mkdir(path.dirname(files.homeKubeconfig), { recursive: true, mode: 0o700 });
}

export async function installKubeconfig(files: WorkerFiles, content: string): Promise<void> {
  await writeAtomic(files.kubeconfig, content);
  await writeAtomic(files.homeKubeconfig, content);
}

export async function removeKubeconfig(files: WorkerFiles): Promise<void> {
  await rm(files.kubeconfig, { force: true });
  await rm(files.homeKubeconfig, { force: true });
}
