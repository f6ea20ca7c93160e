//! Reading a regular capture file ahead on a thread of its own: the kernel's copy of the file
//! into our buffers overlaps with classifying the packets of the buffer before.
//!
//! Copying a file out of the page cache is a quarter to a third of what `read --threads 1`
//! spends (`sys` 0.25 s of 0.85 s on the 4-million-packet benchmark capture, `/usr/bin/time`).
//! With `--threads 2` the reading thread also decoded and dispatched, so it, not the worker,
//! set the pace; a thread that only reads takes the copy off it. Blocks are read whole into
//! buffers that leave room in front ([`HEADROOM`]): the record cut off at the end of one block
//! is copied in front of the next, not the block behind it (one record per block, not a
//! megabyte).

use std::io::{self, Read};

use crossbeam_channel::{Receiver, Sender, bounded};

/// Room kept in front of each block's bytes for the end of the record cut off by the block
/// before: every packet of a snaplen of 65,535 fits; a longer record is joined by a copy.
pub(crate) const HEADROOM: usize = 1 << 16;

/// Blocks read ahead of the one being parsed: enough to cover a pause of the parser, little
/// memory (each is about 1 MiB).
const BLOCKS_AHEAD: usize = 2;

/// What the reading thread hands over.
pub(crate) enum Block {
    /// A buffer whose bytes `HEADROOM..HEADROOM + len` were read (`len` > 0).
    Data(Vec<u8>, usize),
    /// The file ended.
    End,
    /// Reading failed here (after every block before it was handed over).
    Failed(io::Error),
}

/// The receiving end of a file read ahead.
pub(crate) struct ReadAhead {
    rx: Receiver<Block>,
}

impl ReadAhead {
    /// Starts reading `reader` from where it stands, in blocks of `block_len` bytes, into
    /// buffers taken from `spare` when one is there (the buffers packets no longer hold) or
    /// allocated. `None` if no thread could be started (the caller reads directly).
    pub(crate) fn start(
        reader: Box<dyn Read + Send>,
        block_len: usize,
        spare: Receiver<Vec<u8>>,
    ) -> Result<Self, Box<dyn Read + Send>> {
        let (tx, rx) = bounded(BLOCKS_AHEAD);
        // The reader goes to the thread through a channel, so that it comes back if the
        // thread cannot be started.
        let (give, take) = bounded::<Box<dyn Read + Send>>(1);
        let _ = give.send(reader);
        let spawned = std::thread::Builder::new()
            .name("appletap-read-ahead".into())
            .spawn({
                let take = take.clone();
                move || {
                    if let Ok(reader) = take.try_recv() {
                        pump(reader, block_len, &tx, &spare);
                    }
                }
            });
        match spawned {
            Ok(_) => Ok(Self { rx }),
            Err(_) => Err(take.try_recv().unwrap_or_else(|_| Box::new(io::empty()))),
        }
    }

    /// The next block, waiting for it. A regular file does not keep a read waiting, so there
    /// is no stop to ask.
    pub(crate) fn next(&self) -> Block {
        self.rx.recv().unwrap_or(Block::End)
    }
}

/// The reading thread: whole blocks until the end, an error, or nobody listening.
fn pump(
    mut reader: Box<dyn Read + Send>,
    block_len: usize,
    tx: &Sender<Block>,
    spare: &Receiver<Vec<u8>>,
) {
    let len = HEADROOM + block_len;
    loop {
        // Allocated zeroed (`vec!`): fresh memory comes as it is, where growing wrote it.
        let mut buf = spare.try_recv().unwrap_or_else(|_| vec![0; len]);
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let mut n = 0;
        let mut last = None;
        while HEADROOM + n < buf.len() {
            match reader.read(&mut buf[HEADROOM + n..]) {
                Ok(0) => {
                    last = Some(Block::End);
                    break;
                }
                // `min` guards against a reader that claims more than it was given.
                Ok(k) => n = (n + k).min(buf.len() - HEADROOM),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    last = Some(Block::Failed(e));
                    break;
                }
            }
        }
        if n > 0 && tx.send(Block::Data(buf, n)).is_err() {
            return;
        }
        if let Some(last) = last {
            let _ = tx.send(last);
            return;
        }
    }
}
