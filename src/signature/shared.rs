//! The signature set a running capture classifies with, replaceable while it runs (SIGHUP):
//! readers of the packet path take no lock. The set sits in an [`ArcSwap`], and a generation
//! number says when it changed, so a worker compares one integer at a batch boundary and only
//! then takes the new set.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use super::SignatureSet;

/// The current signature set of a run, and how many times it was replaced.
#[derive(Debug)]
pub struct SharedSignatures {
    current: ArcSwap<SignatureSet>,
    generation: AtomicU64,
}

impl SharedSignatures {
    /// Starts with `set` (generation 0).
    pub fn new(set: Arc<SignatureSet>) -> Self {
        Self {
            current: ArcSwap::new(set),
            generation: AtomicU64::new(0),
        }
    }

    /// The set now.
    pub fn load(&self) -> Arc<SignatureSet> {
        self.current.load_full()
    }

    /// How many times the set was replaced: compare before calling [`Self::load`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replaces the set with `set` aligned to the current one ([`SignatureSet::aligned_to`]:
    /// counters kept by the old ids stay valid); returns the set now in use.
    pub fn replace(&self, set: SignatureSet) -> Arc<SignatureSet> {
        let aligned = Arc::new(set.aligned_to(&self.load()));
        self.current.store(Arc::clone(&aligned));
        self.generation.fetch_add(1, Ordering::AcqRel);
        aligned
    }
}
