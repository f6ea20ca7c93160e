//! appletap: a passive classifier of Apple services in network traffic.
//!
//! Packets flow one way through the modules: [`capture`] (files, live interfaces, memory)
//! hands borrowed bytes to [`wire`] (checked views over link, IP, transport, DNS, TLS and QUIC
//! bytes) and [`decode`] (bytes to addresses, ports and payload); [`pipeline`]'s dispatcher
//! decodes each packet once, keeps the clock, reads DNS answers into the name stores and routes
//! the packet to the worker that owns its flow; a worker keeps [`flow`]s, [`inspect`]s their
//! payloads, labels them against the [`signature`] set ([`classify`]) and counts them
//! ([`counters`]); [`report`] renders the merged counters, and [`app`] runs the commands. The
//! core takes bytes and packet timestamps and never reads a clock or a socket, so a capture file
//! always replays to the same output, for any number of threads.
//!
//! ```
//! use std::sync::Arc;
//! use appletap::capture::{LinkType, Packet, Timestamp};
//! use appletap::pipeline::{Engine, EngineConfig};
//! use appletap::signature::SignatureSet;
//!
//! let sigs = Arc::new(SignatureSet::builtin().unwrap());
//! let mut engine = Engine::new(sigs, EngineConfig::default());
//! // A raw IPv4 TCP SYN from 192.168.2.17:50000 to 17.57.144.116:5223 (APNs).
//! let syn: [u8; 40] = [
//!     0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 168, 2, 17, 17, 57, 144, 116,
//!     0xc3, 0x50, 0x14, 0x67, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
//! ];
//! let pkt = Packet { ts: Timestamp(0), link: LinkType::RAW, data: &syn, orig_len: 40, block: None };
//! engine.process(&pkt);
//! engine.finish();
//! let flows = engine.take_finished();
//! assert_eq!(flows[0].service, "apns");
//! assert_eq!(flows[0].confidence, Some("likely"));
//! assert_eq!(flows[0].state, "unanswered");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod capture;
pub mod classify;
pub mod cli;
pub mod counters;
pub mod decode;
pub mod flow;
pub mod inspect;
pub mod limits;
pub mod pipeline;
pub mod report;
pub mod sensor;
pub mod signature;
pub mod wire;

#[cfg(test)]
mod testing;
