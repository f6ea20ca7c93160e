//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766): length-prefixed messages read one after another
//! from a reassembled stream. One stream type serves both readers: the dispatcher, which feeds
//! every answer to the name stores in packet order ([`DnsTcpAnswers`]), and a flow's inspector,
//! which notes the names its flow asked about for the flow record.

use std::collections::{HashMap, VecDeque};

use super::stream::StreamPrefix;
use crate::decode::{PacketMeta, tcp_flags};
use crate::wire::dns::{self, DnsMessage};

/// Bytes of one direction of a DNS/TCP connection held at most: two of the largest messages.
pub const DNS_STREAM_LIMIT: usize = 2 * (u16::MAX as usize + 2);

/// One direction of a DNS/TCP connection.
#[derive(Debug)]
pub struct DnsStream {
    prefix: StreamPrefix,
    /// Bytes of the stream already read as messages.
    used: usize,
}

impl Default for DnsStream {
    fn default() -> Self {
        Self {
            prefix: StreamPrefix::new(DNS_STREAM_LIMIT),
            used: 0,
        }
    }
}

impl DnsStream {
    /// Adds a segment; calls `each` with every whole message it completes, in stream order.
    pub fn push(&mut self, meta: &PacketMeta<'_>, mut each: impl FnMut(&DnsMessage<'_>)) {
        if meta.has_flags(tcp_flags::SYN) {
            self.prefix.syn(meta.tcp_seq);
        }
        if !self.prefix.push(meta.tcp_seq, meta.payload) {
            return;
        }
        loop {
            let rest = self.prefix.bytes().get(self.used..).unwrap_or(&[]);
            let Some(len) = crate::wire::reader::be16(rest, 0).map(usize::from) else {
                break;
            };
            let Some(msg) = rest.get(2..2 + len) else {
                break;
            };
            if let Ok(m) = dns::parse_message(msg) {
                each(&m);
            }
            self.used += 2 + len;
        }
    }

    /// Whether the stream holds all it may: it will not grow any more.
    pub fn is_full(&self) -> bool {
        self.prefix.is_full()
    }
}

/// Most DNS/TCP answer streams the dispatcher follows at once; the oldest is dropped (and
/// counted) past it. DNS over TCP is rare (truncated answers, zone transfers), and each stream
/// may hold [`DNS_STREAM_LIMIT`] bytes.
pub const MAX_ANSWER_STREAMS: usize = 256;

/// The dispatcher's DNS/TCP answer streams, keyed by connection; bounded.
#[derive(Debug)]
pub struct DnsTcpAnswers<K> {
    streams: HashMap<K, DnsStream>,
    order: VecDeque<K>,
    dropped: u64,
}

impl<K> Default for DnsTcpAnswers<K> {
    fn default() -> Self {
        Self {
            streams: HashMap::new(),
            order: VecDeque::new(),
            dropped: 0,
        }
    }
}

impl<K: std::hash::Hash + Eq + Copy> DnsTcpAnswers<K> {
    /// Adds a segment a DNS server sent on connection `key`; calls `each` with every answer it
    /// completes. A stream ends at FIN or RST, or when it is full.
    pub fn push(&mut self, key: K, meta: &PacketMeta<'_>, each: impl FnMut(&DnsMessage<'_>)) {
        if !self.streams.contains_key(&key) {
            if meta.payload.is_empty() && !meta.has_flags(tcp_flags::SYN) {
                return;
            }
            if self.streams.len() >= MAX_ANSWER_STREAMS {
                self.evict_oldest();
            }
            self.streams.insert(key, DnsStream::default());
            self.order.push_back(key);
        }
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        stream.push(meta, each);
        let ended = meta.has_flags(tcp_flags::FIN) || meta.has_flags(tcp_flags::RST);
        if ended || stream.is_full() {
            self.streams.remove(&key);
            self.order.retain(|k| *k != key);
        }
    }

    fn evict_oldest(&mut self) {
        while let Some(k) = self.order.pop_front() {
            if self.streams.remove(&k).is_some() {
                self.dropped += 1;
                return;
            }
        }
    }

    /// Streams given up to stay within [`MAX_ANSWER_STREAMS`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}
