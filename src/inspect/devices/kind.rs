//! What kind of device an identity is (Mac, iPhone, iPad, Apple TV, HomePod, Apple Watch,
//! other Apple, not Apple), with the evidence for it, and whose MAC prefixes are Apple's.
//!
//! The rules, strongest first: the model an mDNS TXT record gives (`MacBookPro18,3`,
//! `iPhone14,2`, `AppleTV11,1`, `AudioAccessory5,1` = HomePod, `Watch6,2`); a name the owner
//! gave (DHCP host name, mDNS host and instance names: `Lucas-iPhone`); the DHCP parameter
//! request list of macOS; then, saying only "Apple", the iOS DHCP parameter list, Apple-only
//! Bonjour service types, and an Apple MAC prefix (IEEE registry). The strongest kind wins;
//! every rule that matched is kept as evidence.
//!
//! Apple's prefixes are `signatures/apple-oui.txt`, generated from the IEEE registry by
//! `scripts/apple-oui.sh` and embedded here (no network at run time).

use std::sync::OnceLock;

use serde::Serialize;

use super::Identity;
use crate::wire::link::Mac;

/// A device's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A Mac.
    Mac,
    /// An iPhone.
    Iphone,
    /// An iPad.
    Ipad,
    /// An Apple TV.
    AppleTv,
    /// A HomePod.
    Homepod,
    /// An Apple Watch.
    AppleWatch,
    /// Some Apple device whose kind nothing told.
    OtherApple,
    /// Nothing said Apple.
    NotApple,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Self; 8] = [
        Self::Mac,
        Self::Iphone,
        Self::Ipad,
        Self::AppleTv,
        Self::Homepod,
        Self::AppleWatch,
        Self::OtherApple,
        Self::NotApple,
    ];

    /// Stable name used in reports, JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mac => "mac",
            Self::Iphone => "iphone",
            Self::Ipad => "ipad",
            Self::AppleTv => "apple-tv",
            Self::Homepod => "homepod",
            Self::AppleWatch => "apple-watch",
            Self::OtherApple => "other-apple",
            Self::NotApple => "not-apple",
        }
    }

    /// Whether it is an Apple device.
    pub fn is_apple(self) -> bool {
        self != Self::NotApple
    }
}

/// The registry's name for Apple's prefixes.
pub const APPLE_VENDOR: &str = "Apple, Inc.";

/// The embedded list of Apple's MAC prefixes (see the module docs).
pub const APPLE_OUI_LIST: &str = include_str!("../../../signatures/apple-oui.txt");

/// Apple's prefixes, parsed once, sorted.
fn apple_ouis() -> &'static [u32] {
    static OUIS: OnceLock<Vec<u32>> = OnceLock::new();
    OUIS.get_or_init(|| {
        let mut v: Vec<u32> = APPLE_OUI_LIST
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| u32::from_str_radix(l.trim(), 16).ok())
            .collect();
        v.sort_unstable();
        v
    })
}

/// The vendor a MAC address's prefix is registered to, if it is Apple's (a locally
/// administered address has no registered prefix).
pub fn vendor(mac: Mac) -> Option<&'static str> {
    (!mac.is_local() && apple_ouis().binary_search(&mac.oui()).is_ok()).then_some(APPLE_VENDOR)
}

/// The kind a model identifier names (`iPhone14,2` → iPhone); `OtherApple` for Apple
/// families that are none of the kinds (iPod, AirPort, Vision), `None` for anything else.
pub fn kind_of_model(model: &str) -> Option<Kind> {
    let family = model.trim_end_matches(|c: char| c.is_ascii_digit() || c == ',');
    Some(match family {
        "MacBookPro" | "MacBookAir" | "MacBook" | "iMac" | "iMacPro" | "Macmini" | "MacPro"
        | "Mac" | "MacFamily" => Kind::Mac,
        "iPhone" => Kind::Iphone,
        "iPad" => Kind::Ipad,
        "AppleTV" => Kind::AppleTv,
        "AudioAccessory" => Kind::Homepod,
        "Watch" => Kind::AppleWatch,
        "iPod" | "AirPort" | "RealityDevice" => Kind::OtherApple,
        _ => return None,
    })
}

/// The kind a name its owner gave suggests (`Lucas-iPhone`, `Living Room Apple TV`).
pub fn kind_of_name(name: &str) -> Option<Kind> {
    let n = name.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
    Some(if has(&["iphone"]) {
        Kind::Iphone
    } else if has(&["ipad"]) {
        Kind::Ipad
    } else if has(&[
        "macbook", "imac", "mac-mini", "macmini", "mac mini", "mac-pro", "mac pro",
    ]) {
        Kind::Mac
    } else if has(&["appletv", "apple-tv", "apple tv"]) {
        Kind::AppleTv
    } else if has(&["homepod"]) {
        Kind::Homepod
    } else if has(&["apple-watch", "apple watch", "applewatch"]) {
        Kind::AppleWatch
    } else {
        return None;
    })
}

/// DHCP parameter request lists (option 55) of Apple's DHCP clients: macOS (with 95, LDAP,
/// and 44/46, NetBIOS) and iOS/iPadOS/tvOS/watchOS (without), as the captures show them.
const MACOS_PARAMETERS: [&[u8]; 2] = [
    &[1, 121, 3, 6, 15, 119, 252, 95, 44, 46],
    &[1, 3, 6, 15, 119, 95, 252, 44, 46],
];
const IOS_PARAMETERS: [&[u8]; 1] = [&[1, 121, 3, 6, 15, 119, 252]];

/// Bonjour service types only Apple's systems announce.
const APPLE_SERVICE_TYPES: [&str; 10] = [
    "_companion-link._tcp",
    "_apple-mobdev2._tcp",
    "_apple-mobdev._tcp",
    "_apple-pairable._tcp",
    "_airplay._tcp",
    "_raop._tcp",
    "_sleep-proxy._udp",
    "_rdlink._tcp",
    "_touch-able._tcp",
    "_airport._tcp",
];

/// Strength of a rule: the strongest kind wins.
const MODEL: u8 = 3;
const NAME: u8 = 2;
const FINGERPRINT: u8 = 1;
const HINT: u8 = 0;

/// A device's kind and the evidence for it (every rule that matched, strongest first).
pub fn classify(d: &Identity) -> (Kind, Vec<String>) {
    let mut found: Vec<(u8, Kind, String)> = Vec::new();
    for m in &d.models {
        if let Some(k) = kind_of_model(m) {
            found.push((MODEL, k, format!("mDNS TXT model {m}")));
        }
    }
    let names = d
        .dhcp
        .host_name
        .iter()
        .map(|n| ("DHCP host name", n))
        .chain(d.host_names.iter().map(|n| ("mDNS host name", n)))
        .chain(d.instance_names.iter().map(|n| ("mDNS instance name", n)));
    for (what, n) in names {
        if let Some(k) = kind_of_name(n) {
            found.push((NAME, k, format!("{what} {n}")));
        }
    }
    let prl = &d.dhcp.parameters[..];
    if MACOS_PARAMETERS.contains(&prl) {
        found.push((
            FINGERPRINT,
            Kind::Mac,
            "DHCP parameter list of macOS".into(),
        ));
    } else if IOS_PARAMETERS.contains(&prl) {
        found.push((HINT, Kind::OtherApple, "DHCP parameter list of iOS".into()));
    }
    if let Some(v) = &d.dhcp.vendor_class
        && v.starts_with("AAPL")
    {
        found.push((FINGERPRINT, Kind::Mac, format!("DHCP vendor class {v}")));
    }
    for t in d
        .service_types
        .iter()
        .filter(|t| APPLE_SERVICE_TYPES.contains(&t.as_str()))
    {
        found.push((HINT, Kind::OtherApple, format!("announces {t}")));
    }
    if let Some(mac) = d.mac
        && let Some(v) = vendor(mac)
    {
        found.push((HINT, Kind::OtherApple, format!("MAC prefix of {v}")));
    }
    // Strongest first; a specific kind before "other Apple" at the same strength.
    found.sort_by_key(|(s, k, _)| (std::cmp::Reverse(*s), *k == Kind::OtherApple));
    let kind = found.first().map_or(Kind::NotApple, |(_, k, _)| *k);
    (kind, found.into_iter().map(|(_, _, why)| why).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_name_kinds() {
        for (m, k) in [
            ("MacBookPro18,3", Kind::Mac),
            ("iMac11,3", Kind::Mac),
            ("Mac14,2", Kind::Mac),
            ("Macmini9,1", Kind::Mac),
            ("iPhone14,2", Kind::Iphone),
            ("iPad13,1", Kind::Ipad),
            ("AppleTV11,1", Kind::AppleTv),
            ("AudioAccessory5,1", Kind::Homepod),
            ("Watch6,2", Kind::AppleWatch),
            ("AirPort10,115", Kind::OtherApple),
        ] {
            assert_eq!(kind_of_model(m), Some(k), "{m}");
        }
        assert_eq!(kind_of_model("Xbox"), None);
        assert_eq!(kind_of_model(""), None);
    }

    #[test]
    fn the_model_outweighs_the_name_and_evidence_is_kept() {
        let mut d = Identity {
            mac: Some(Mac([0xd8, 0x30, 0x62, 0x56, 0x00, 0x1c])),
            ..Identity::default()
        };
        assert_eq!(
            classify(&d),
            (
                Kind::OtherApple,
                vec!["MAC prefix of Apple, Inc.".to_string()]
            )
        );
        d.dhcp.host_name = Some("Lucas-iPhone".into());
        assert_eq!(classify(&d).0, Kind::Iphone);
        d.models.insert("iMac11,3".into());
        let (kind, evidence) = classify(&d);
        assert_eq!(kind, Kind::Mac);
        assert_eq!(evidence[0], "mDNS TXT model iMac11,3");
        assert_eq!(evidence.len(), 3);
        assert_eq!(classify(&Identity::default()).0, Kind::NotApple);
    }

    #[test]
    fn randomized_addresses_have_no_vendor() {
        assert_eq!(vendor(Mac([0xd8, 0x30, 0x62, 0, 0, 1])), Some(APPLE_VENDOR));
        assert_eq!(vendor(Mac([0xda, 0x30, 0x62, 0, 0, 1])), None);
        assert_eq!(vendor(Mac([0x00, 0x1b, 0xd5, 0, 0, 1])), None);
    }
}
