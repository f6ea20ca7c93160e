//! TEMPORARY STUB (replaced by the real reader).
use std::io::Read;
use std::path::Path;
use super::{LinkType, Packet, Timestamp};
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CaptureError(String);
pub struct CaptureFile { r: pcap_file::pcap::PcapReader<Box<dyn Read + Send>>, link: LinkType, n: u64, buf: Vec<u8>, done: bool }
impl CaptureFile {
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let f = std::fs::File::open(path).map_err(|e| CaptureError(e.to_string()))?;
        Self::from_reader(path.display().to_string(), Box::new(f))
    }
    pub fn from_reader(_name: String, r: Box<dyn Read + Send>) -> Result<Self, CaptureError> {
        let r = pcap_file::pcap::PcapReader::new(r).map_err(|e| CaptureError(e.to_string()))?;
        let link = LinkType(u32::from(r.header().datalink));
        Ok(Self { r, link, n: 0, buf: Vec::new(), done: false })
    }
    pub fn next_packet(&mut self) -> Option<Result<Packet<'_>, CaptureError>> {
        if self.done { return None; }
        match self.r.next_packet()? {
            Ok(p) => { self.n += 1; self.buf.clear(); self.buf.extend_from_slice(&p.data); let ts = Timestamp(p.timestamp.as_nanos() as u64); let ol = p.orig_len; Some(Ok(Packet { ts, link: self.link, data: &self.buf, orig_len: ol })) }
            Err(e) => { self.done = true; Some(Err(CaptureError(e.to_string()))) }
        }
    }
    pub fn records_read(&self) -> u64 { self.n }
    pub fn bytes_consumed(&self) -> u64 { 0 }
    pub fn file_len(&self) -> Option<u64> { None }
    pub fn format(&self) -> &'static str { "pcap" }
}
