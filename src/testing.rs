//! What the unit tests share: the pseudo-random sequence their mutation rounds draw from.

/// The next state of an xorshift64 generator (shifts 13, 7, 17): a fixed sequence for a given
/// seed, so a failing mutation round comes back on every run.
pub(crate) fn xorshift(mut state: u64) -> u64 {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    state
}
