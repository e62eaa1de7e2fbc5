/**
 * An output file known before it is written: its path, size and first bytes (what a resumed
 * unit checks a file already there against) and how to write it. One description serves a
 * single-process run (every file into one output folder) and a job array (each task writes the
 * files of its units), so both write the same bytes.
 */
import type { SafetensorsInputTensor, SafetensorsLayout } from "../../safetensors/write.js";
import { writeSafetensorsTo } from "../../safetensors/write.js";
import type { ByteSink } from "../../source/atomic-write.js";

/** A file of an output folder, described before it is written. */
export interface PlannedFile {
  /** The path inside the output folder, `/`-separated. */
  readonly path: string;
  /** Its size in bytes. */
  readonly size: number;
  /** Its first bytes: a safetensors file's header, or the whole of a small file. */
  readonly head: Uint8Array;
  /** Bytes of tensor data among `size` (what progress counts while it streams). */
  readonly dataBytes: number;
  /** Writes the file's bytes into `sink`; `onData` hears of tensor bytes as they go. */
  write(sink: ByteSink, name: string, onData?: (bytes: number) => void): Promise<void>;
  /** A safetensors file's layout (header and where each tensor's bytes go), for ranged reads. */
  readonly layout?: SafetensorsLayout<SafetensorsInputTensor>;
}

/** A small file whose contents are known: a config, an index, a tokenizer. */
export function smallFile(path: string, contents: string | Uint8Array): PlannedFile {
  const bytes = typeof contents === "string" ? new TextEncoder().encode(contents) : contents;
  return {
    path,
    size: bytes.length,
    head: bytes,
    dataBytes: 0,
    write: (sink) => sink.write(bytes),
  };
}

/** A safetensors file laid out by `safetensorsLayout` (or `shardedFiles`). */
export function safetensorsFile<T extends SafetensorsInputTensor>(
  path: string,
  layout: SafetensorsLayout<T>,
): PlannedFile {
  return {
    path,
    size: layout.fileSize,
    head: layout.head,
    dataBytes: layout.dataSize,
    layout,
    write: (sink, name, onData) => writeSafetensorsTo(sink, layout, name, onData),
  };
}
