// The atomic file writer shared by every format written (safetensors, PNG, IDX, .npy): a reader never sees half a file,
// and a failed write never damages the file already at the path. Checkpoints (safetensors) use it too.
import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `bytes` into a temporary file in the same directory, syncs it, renames it over `path` and
 * syncs the directory. On any failure the temporary file is removed and `path` is left as it was.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  if (typeof path !== 'string' || path === '')
    throw new TypeError(`path: expected a file name, got ${JSON.stringify(path) ?? typeof path}`);
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx');
  } catch (e) {
    throw new Error(`${path}: cannot create a temporary file in ${dir}: ${(e as Error).message}`, { cause: e });
  }
  try {
    await fh.writeFile(bytes);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    throw new Error(`${path}: write failed, any previous file is unchanged: ${(e as Error).message}`, { cause: e });
  }
  await syncDirectory(dir);
}

async function syncDirectory(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    // Some platforms (Windows, some network file systems) cannot open or sync a directory; the data is already in place.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'ENOTSUP')
      throw new Error(`${dir}: syncing the directory after the rename failed: ${(e as Error).message}`, { cause: e });
  } finally {
    await fh?.close();
  }
}
