//! What the benches share: real packets from `../shared/pcaps/`, read once into memory with
//! appletap's own capture reader.
// Included by several bench crates; `pub` is for the including crate.
#![allow(unreachable_pub)]

use std::path::{Path, PathBuf};

use appletap::capture::file::CaptureFile;
use appletap::capture::{MemorySource, OwnedPacket};

/// The shared captures, beside the project.
pub fn shared_pcaps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps")
}

/// Every packet of a shared capture, in file order (index 0 is tshark's frame 1).
pub fn load(file: &str) -> Vec<OwnedPacket> {
    let path = shared_pcaps().join(file);
    let mut cap = CaptureFile::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (../shared/pcaps must exist)", path.display()));
    let source = MemorySource::from_source(&mut cap);
    if let Some(e) = source.error() {
        panic!("{}: {e}", path.display());
    }
    source.into_packets()
}
