/**
 * Zip reading and writing: yauzl reads (a file or an object in S3, through windows), RawZipWriter
 * writes entries whose compressed bytes come from another zip as they are.
 */
export { escapingEntryName, storedEntryName, zipEntries } from './entries';
export { DEFAULT_WINDOW_BYTES, getRange, openZipInS3, type ZipInS3, type ZipObject } from './s3-reader';
export { fileWindowReader, WindowReader, type WindowOptions, type WindowSource } from './window-reader';
export {
  DEFLATED,
  type DosDateTime,
  LOCAL_HEADER_BYTES,
  LOCAL_HEADER_SIGNATURE,
  type PlacedEntry,
  type RawEntry,
  RawZipWriter,
  type RawZipWriterOptions,
  STORED,
  toDosDateTime,
  type ZipLayout,
} from './writer';
