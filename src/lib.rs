//! appletap: a passive classifier of Apple services in network traffic.
//!
//! Packets come from a capture file or a live interface ([`capture`]), are decoded to their
//! IP and transport headers ([`decode`]), grouped into bidirectional flows ([`flow`]) and
//! labelled against the Apple signature set ([`signature`], [`classify`]); finished flows
//! become [`flow::record::FlowRecord`]s and per-service [`tally`] counters, rendered by
//! [`report`]. The [`engine`] ties decode, flows and labels together as a sans-IO core: it
//! takes bytes and packet timestamps and never reads a clock or a socket, so a capture file
//! always replays to the same output.
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
pub mod signature;
pub mod wire;
