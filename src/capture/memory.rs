//! Packets held in memory, as a packet source: a scripted list for tests, benches and fuzz
//! targets, or every packet of a capture read once (from a file or from a capture's bytes in
//! memory) and replayed without I/O.

use std::io::Cursor;

use super::file::CaptureFile;
use super::{CaptureError, LinkType, Next, Packet, PacketSource, Timestamp};

/// A packet that owns its bytes.
///
/// Each packet is its own allocation of exactly its length, so a parser reading past a
/// packet's end is caught by a memory checker (fuzz targets rely on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPacket {
    /// When the packet was captured.
    pub ts: Timestamp,
    /// How `data` begins.
    pub link: LinkType,
    /// The captured bytes.
    pub data: Vec<u8>,
    /// The packet's length on the wire.
    pub orig_len: u32,
}

impl OwnedPacket {
    /// A packet captured whole: its length on the wire is its length.
    pub fn new(ts: Timestamp, link: LinkType, data: Vec<u8>) -> Self {
        let orig_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        Self {
            ts,
            link,
            data,
            orig_len,
        }
    }

    /// A copy of a borrowed packet (out of its source's buffer).
    pub fn copy_of(packet: &Packet<'_>) -> Self {
        Self {
            ts: packet.ts,
            link: packet.link,
            data: packet.data.to_vec(),
            orig_len: packet.orig_len,
        }
    }

    /// The packet as a source hands it out (in no shared buffer: a pipeline copies it).
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

/// A packet source over packets in memory: yields them in order, then the error that ended
/// the capture they were read from (if one did), then [`Next::End`].
#[derive(Debug, Default)]
pub struct MemorySource {
    packets: Vec<OwnedPacket>,
    /// Index of the next packet to yield.
    next: usize,
    /// What ended the capture the packets were read from; yielded once, after them.
    error: Option<CaptureError>,
}

impl MemorySource {
    /// A source yielding `packets`.
    pub fn new(packets: Vec<OwnedPacket>) -> Self {
        Self {
            packets,
            next: 0,
            error: None,
        }
    }

    /// A source yielding whole packets given as (timestamp, link type, bytes).
    pub fn from_frames(frames: impl IntoIterator<Item = (Timestamp, LinkType, Vec<u8>)>) -> Self {
        frames
            .into_iter()
            .map(|(ts, link, data)| OwnedPacket::new(ts, link, data))
            .collect()
    }

    /// Every packet `source` yields until it ends or fails (its error is kept, and yielded
    /// after the packets). Meant for finite sources: a live capture never ends.
    pub fn from_source(source: &mut dyn PacketSource) -> Self {
        let mut packets = Vec::new();
        let error = loop {
            match source.next_packet() {
                Next::Packet(p) => packets.push(OwnedPacket::copy_of(&p)),
                Next::Idle => {}
                Next::End => break None,
                Next::Error(e) => break Some(e),
            }
        };
        Self {
            packets,
            next: 0,
            error,
        }
    }

    /// Every packet of a pcap or pcapng capture held in memory; `name` is what error messages
    /// call it.
    ///
    /// # Errors
    /// The bytes are no capture or their first header is damaged; an error further in is
    /// kept and yielded after the packets before it (see [`MemorySource::error`]).
    pub fn from_capture_bytes<B>(name: &str, bytes: B) -> Result<Self, CaptureError>
    where
        B: AsRef<[u8]> + Send + 'static,
    {
        let mut capture = CaptureFile::from_reader(name.to_owned(), Box::new(Cursor::new(bytes)))?;
        Ok(Self::from_source(&mut capture))
    }

    /// The packets, yielded or not.
    pub fn packets(&self) -> &[OwnedPacket] {
        &self.packets
    }

    /// The packets, yielded or not.
    pub fn into_packets(self) -> Vec<OwnedPacket> {
        self.packets
    }

    /// The error that ended the capture the packets were read from, until it is yielded.
    pub fn error(&self) -> Option<&CaptureError> {
        self.error.as_ref()
    }
}

impl FromIterator<OwnedPacket> for MemorySource {
    fn from_iter<I: IntoIterator<Item = OwnedPacket>>(packets: I) -> Self {
        Self::new(packets.into_iter().collect())
    }
}

impl PacketSource for MemorySource {
    fn next_packet(&mut self) -> Next<'_> {
        match self.packets.get(self.next) {
            Some(p) => {
                self.next += 1;
                Next::Packet(p.packet())
            }
            None => self.error.take().map_or(Next::End, Next::Error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPHONE_RAW: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/link/iphone-raw.pcap"
    ));

    fn drain(source: &mut MemorySource) -> (Vec<OwnedPacket>, Option<CaptureError>) {
        let mut packets = Vec::new();
        loop {
            match source.next_packet() {
                Next::Packet(p) => {
                    assert!(p.block.is_none());
                    packets.push(OwnedPacket::copy_of(&p));
                }
                Next::Idle => panic!("memory is never idle"),
                Next::End => return (packets, None),
                Next::Error(e) => {
                    assert!(matches!(source.next_packet(), Next::End));
                    return (packets, Some(e));
                }
            }
        }
    }

    #[test]
    fn frames_come_back_in_order_whole() {
        let frames = vec![
            (Timestamp(5), LinkType::RAW, b"first".to_vec()),
            (Timestamp(3), LinkType::ETHERNET, b"second!".to_vec()),
        ];
        let mut source = MemorySource::from_frames(frames.clone());
        let (packets, err) = drain(&mut source);
        assert!(err.is_none());
        let got: Vec<_> = packets
            .into_iter()
            .map(|p| (p.ts, p.link, p.orig_len, p.data))
            .collect();
        let want: Vec<_> = frames
            .into_iter()
            .map(|(ts, link, data)| (ts, link, data.len() as u32, data))
            .collect();
        assert_eq!(got, want);
        assert!(matches!(source.next_packet(), Next::End));
        assert_eq!(source.packets().len(), 2);
    }

    #[test]
    fn a_capture_in_memory_replays_as_its_reader_reads_it() {
        let mut reader =
            CaptureFile::from_reader("iphone-raw".into(), Box::new(Cursor::new(IPHONE_RAW)))
                .unwrap();
        let mut direct = Vec::new();
        while let Some(p) = reader.next_packet() {
            direct.push(OwnedPacket::copy_of(&p.unwrap()));
        }
        assert!(!direct.is_empty());
        let mut source = MemorySource::from_capture_bytes("iphone-raw", IPHONE_RAW).unwrap();
        assert!(source.error().is_none());
        let (packets, err) = drain(&mut source);
        assert!(err.is_none());
        assert_eq!(packets, direct);
    }

    #[test]
    fn a_cut_capture_yields_its_packets_then_the_readers_error() {
        let cut = IPHONE_RAW[..IPHONE_RAW.len() - 3].to_vec();
        let mut reader =
            CaptureFile::from_reader("cut".into(), Box::new(Cursor::new(cut.clone()))).unwrap();
        let mut direct = Vec::new();
        let mut direct_err = None;
        while let Some(p) = reader.next_packet() {
            match p {
                Ok(p) => direct.push(OwnedPacket::copy_of(&p)),
                Err(e) => direct_err = Some(e.to_string()),
            }
        }
        let mut source = MemorySource::from_capture_bytes("cut", cut).unwrap();
        assert!(matches!(
            source.error(),
            Some(CaptureError::Truncated { .. })
        ));
        let (packets, err) = drain(&mut source);
        assert_eq!(packets, direct);
        assert_eq!(err.map(|e| e.to_string()), direct_err);
        assert!(source.error().is_none(), "yielded once");
        let not_a_capture = MemorySource::from_capture_bytes("text", b"hello".as_slice());
        assert!(matches!(
            not_a_capture,
            Err(CaptureError::NotACapture { .. })
        ));
    }
}
