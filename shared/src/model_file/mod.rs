//! The exported model file read by `predict` and the browser app.
//!
//! Layout (format 3): the magic `FMTL`, a little-endian u32 format version, a u32 header
//! length, the header (JSON: backbone, tasks, network sizes, preprocessing constants, training
//! data and protocol, metrics), the payload, and the sha256 of every byte before it. The
//! payload is the multi-task head's parameters in the compact format (`compact.rs`: half
//! precision where the values allow it, which the trainer's export ensures, or one byte per
//! weight when the header's `head_weights` is `int8`), followed, for a
//! model whose backbone was fine-tuned, by the backbone's own (its length in the header), or,
//! for partial fine-tuning, by the tuned last blocks alone (their count in the header, their
//! weights at the precision of the stock backbone's that the model runs on): the stock
//! backbone, which the app downloads once, supplies the rest.
//!
//! A model file is untrusted input (the app loads any file a visitor picks), so loading checks,
//! in this order and before anything is allocated from the header's numbers: the file's size,
//! the magic and version, the checksum (which covers the header too: an edited age offset or
//! forged test figures are refused like a damaged payload), the header's sizes against fixed
//! bounds and against the payload's length, and finally every parameter's shape and finiteness.
//! The checksum detects damage and editing; it is not a signature (see the README's security
//! section).

mod error;
mod file;
mod header;

pub use error::WeightsError;
pub use file::{FORMAT_VERSION, MAGIC, MAX_MODEL_BYTES, Model, as_stored, export, load, read_header, with_calibration};
pub use header::Header;

#[cfg(test)]
mod tests;
