#!/usr/bin/env bash
# Builds the Debian package target/debian/appletap_*.deb with cargo-deb (installed by
# .ci/setup): builds appletap, generates its man pages and shell completions from the CLI
# definition into target/assets (so they never drift from --help), then packages them with the
# unit and the default config ([package.metadata.deb] in Cargo.toml).
# APPLETAP_DEB_PROFILE picks the cargo profile (default release; the test uses deb-test);
# APPLETAP_DEB_BIN=PATH packages that binary instead of building one (the test passes its own).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${APPLETAP_DEB_PROFILE:-release}"
bin="target/$profile/appletap"
if [[ -n ${APPLETAP_DEB_BIN:-} ]]; then
  # A binary built already (the tests pass the one they test): packaged as it is, which spares
  # CI a second optimised build of the whole crate (about 6 minutes on 2 cores).
  mkdir -p "target/$profile"
  cp "$APPLETAP_DEB_BIN" "$bin"
else
  cargo build --locked --profile "$profile" --bin appletap
fi
rm -rf target/assets
mkdir -p target/assets/man target/assets/completions
"$bin" man target/assets/man
"$bin" completions bash > target/assets/completions/appletap
"$bin" completions zsh > target/assets/completions/_appletap
"$bin" completions fish > target/assets/completions/appletap.fish
gzip -9n target/assets/man/*.1
cargo deb --no-build --locked --profile "$profile" "$@"
