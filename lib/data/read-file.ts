// Opening a file named by a user: Node's own messages for a directory or a special file ("EISDIR:
// illegal operation on a directory, read") do not say which file, so every reader opens through here
// and gets an error that names the path and keeps Node's code (ENOENT, EACCES, EISDIR) for callers.
import { open, type FileHandle } from 'node:fs/promises';

function named(path: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  const why =
    err.code === 'EISDIR'
      ? 'is a directory, not a file'
      : err.message.includes(path)
        ? err.message
        : `${err.message} (${err.code ?? 'error'})`;
  return Object.assign(new Error(`${path}: cannot read: ${why}`, { cause: e }), { code: err.code });
}

/** An open handle on a regular file and its size; a directory, FIFO or device is refused before any read (a FIFO would block). */
export async function openRegularFile(path: string): Promise<{ fh: FileHandle; size: number }> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw named(path, e);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error(`${path}: cannot read: is a directory, not a file`), { code: 'EISDIR' });
    if (!st.isFile())
      throw Object.assign(new Error(`${path}: cannot read: not a regular file (a pipe, socket or device)`), { code: 'EINVAL' });
    return { fh, size: st.size };
  } catch (e) {
    await fh.close();
    throw e instanceof Error && e.message.startsWith(`${path}:`) ? e : named(path, e);
  }
}

/** The whole of a regular file, refused before reading when it has more than `maxBytes` (`tooLarge` makes that error). */
export async function readRegularFile(path: string, maxBytes = Infinity, tooLarge?: (size: number) => Error): Promise<Buffer> {
  const { fh, size } = await openRegularFile(path);
  try {
    if (size > maxBytes)
      throw tooLarge ? tooLarge(size) : new Error(`${path}: the file is ${size} bytes, more than the limit of ${maxBytes}`);
    return await fh.readFile();
  } catch (e) {
    throw e instanceof Error && e.message.startsWith(`${path}`) ? e : named(path, e);
  } finally {
    await fh.close();
  }
}
