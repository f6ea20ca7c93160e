//! What the benches share: real packets from `../shared/pcaps/`, read once into memory with
//! appletap's own capture reader.

use std::path::{Path, PathBuf};

use appletap::capture::file::CaptureFile;
use appletap::capture::{LinkType, Packet, Timestamp};

/// The shared captures, beside the project.
pub fn shared_pcaps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps")
}

/// A packet copied out of the capture reader's buffer.
#[derive(Debug, Clone)]
pub struct OwnedPacket {
    pub ts: Timestamp,
    pub link: LinkType,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

impl OwnedPacket {
    /// The packet as the engine takes it.
    pub fn packet(&self) -> Packet<'_> {
        Packet {
            ts: self.ts,
            link: self.link,
            data: &self.data,
            orig_len: self.orig_len,
            block: None,
        }
    }
}

/// Every packet of a shared capture, in file order (index 0 is tshark's frame 1).
pub fn load(file: &str) -> Vec<OwnedPacket> {
    let path = shared_pcaps().join(file);
    let mut cap = CaptureFile::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (../shared/pcaps must exist)", path.display()));
    let mut out = Vec::new();
    while let Some(p) = cap.next_packet() {
        let p = p.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push(OwnedPacket {
            ts: p.ts,
            link: p.link,
            data: p.data.to_vec(),
            orig_len: p.orig_len,
        });
    }
    out
}
