/**
 * The errors of an indexed dataset that is not what it should be. Each names the file (`.idx`
 * or a `.bin` shard) and the entry at fault (`header.magic`, `sizes[1025]`, `pointers[7]`,
 * `doc_idx[3]`), so one line on stderr says where to look.
 */
import { CheckpointError, locate, NotFoundError } from "../util/errors.js";

/**
 * A fault located in a dataset file: the one shape of {@link DatasetFormatError} and
 * {@link DatasetIndexError}, which differ only in what kind of fault they name.
 */
export abstract class DatasetFileError extends CheckpointError {
  override readonly file: string;
  constructor(
    file: string,
    record: string,
    offset: number | undefined,
    readonly detail: string,
  ) {
    super(locate(file, record, offset, detail), { file, record, offset });
    this.file = file;
  }
}

/**
 * An index or data file whose layout is wrong: bad magic, a version other than 1, an unknown
 * dtype code, counts that do not fit the file's size.
 */
export class DatasetFormatError extends DatasetFileError {
  override readonly name = "DatasetFormatError";
}

/**
 * An index whose entries contradict each other or the data: a pointer that is not the running
 * sum of the sizes before it, a negative size, an item that ends past the data, an item of
 * another length than the batch reader was told.
 */
export class DatasetIndexError extends DatasetFileError {
  override readonly name = "DatasetIndexError";
}

/** A dataset file that is not there: the index, the data, or one shard of the data. */
export class DatasetFileNotFoundError extends NotFoundError {
  constructor(
    /** The folder or repository looked in. */
    readonly folder: string,
    /** The file that is missing. */
    readonly missing: string,
    detail: string,
  ) {
    super(`${folder}: ${detail}`, { file: folder, record: missing });
  }
}

/** Items asked for that the dataset does not have (a step past its end). */
export class ItemsOutOfRangeError extends NotFoundError {}
