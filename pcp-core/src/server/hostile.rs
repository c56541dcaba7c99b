//! Hostile answers: the test server answering MAP and PEER requests with
//! crafted, wrong responses, to test how a client copes with a broken or
//! malicious server (or a spoofer on the LAN).
//!
//! Each [`Hostile`] case takes the answer the server would have sent and
//! turns it into the datagrams actually sent: a wrong nonce, a truncation,
//! a flood of garbage before the valid answer, a bad external address...
//! Cases are named by a stable string ([`Hostile::name`]), the same in the
//! test servers of every language and in the shared table of cases and
//! expected outcomes (`tests/hostile/cases.json`). Deletes (lifetime 0) and
//! ANNOUNCE are answered normally, so that a client can always clean up.

use crate::wire::{HEADER_SIZE, MAX_MESSAGE_SIZE, VERSION};

/// One way of answering wrongly. See [`Hostile::all`] for the list and
/// [`Hostile::name`] for the names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hostile {
    /// The answer with another nonce.
    WrongNonce,
    /// The answer with MAP and PEER swapped in the opcode.
    WrongOpcode,
    /// The answer without the R (response) bit: it looks like a request.
    NoRBit,
    /// The answer with version 3 (and result SUCCESS).
    WrongVersion,
    /// Every truncation of the answer, from 0 bytes to one byte short.
    EveryTruncation,
    /// The answer padded to 1104 bytes (over the 1100-byte limit).
    Oversize,
    /// The answer with 1, 2 and 3 bytes appended (not a multiple of 4).
    NotMultipleOf4,
    /// The answer with result codes 14, 99 and 255, which RFC 6887 does not define.
    UnknownResultCode,
    /// The answer with an unknown mandatory option (code 99) appended.
    UnknownMandatoryOption,
    /// The answer with an option whose length runs past the end.
    OptionOverrun,
    /// The answer with a THIRD_PARTY option of the wrong length.
    BadOptionLength,
    /// The answer with a PREFER_FAILURE option, which a PEER answer must not carry
    /// and which a MAP answer carries only when asked for.
    UnexpectedOption,
    /// The answer for another internal port.
    WrongInternalPort,
    /// The answer for another protocol.
    WrongProtocol,
    /// SUCCESS with external port 0.
    ExternalPortZero,
    /// SUCCESS with lifetime 0 (what answers a delete) to a create.
    SuccessLifetimeZero,
    /// The valid answer, but from another port than the server's.
    FromOtherPort,
    /// A SUCCESS ANNOUNCE response instead of the answer.
    AnnounceInstead,
    /// 100 datagrams of random bytes and sizes, and no answer.
    GarbageFlood,
    /// 100 datagrams of random bytes and sizes, then the valid answer.
    GarbageFloodThenValid,
    /// The valid answer three times.
    DuplicateAnswers,
    /// An answer with another nonce, then the valid one.
    WrongNonceThenValid,
    /// The valid answer with an unknown optional option (code 200): to be ignored.
    UnknownOptionalOption,
    /// The valid answer with every reserved field filled with ones: to be ignored.
    ReservedBitsSet,
    /// The valid answer with the largest lifetime, 2^32 - 1 seconds.
    LifetimeMax,
    /// Valid answers whose epoch goes back: 1000000 s in the first, 10 s in
    /// every later one (a server that restarted once).
    EpochBack,
    /// An error (NOT_AUTHORIZED) with the full, matching payload.
    ErrorWithPayload,
    /// An error (NO_RESOURCES) as the 24-byte header alone.
    HeaderOnlyError,
    /// A header-only error (NO_RESOURCES), then the valid answer.
    HeaderOnlyErrorThenValid,
    /// A random 1028-byte datagram with version 91, the R bit and result 1
    /// (UNSUPP_VERSION), then the valid answer.
    VersionGarbageThenValid,
    /// A well-formed UNSUPP_VERSION answer in a version 1 header.
    LowerVersionAnswer,
    /// SUCCESS with external address 0.0.0.0 (as ::ffff:0.0.0.0).
    ExternalUnspecifiedV4,
    /// SUCCESS with external address ::.
    ExternalUnspecifiedV6,
    /// SUCCESS with external address 224.0.0.1.
    ExternalMulticastV4,
    /// SUCCESS with external address 255.255.255.255.
    ExternalBroadcast,
    /// SUCCESS with external address ff02::1.
    ExternalMulticastV6,
    /// What miniupnpd 2.3.1 does when the suggested port is taken: a MAP
    /// with PREFER_FAILURE answered SUCCESS with another external port (the
    /// next one) instead of CANNOT_PROVIDE_EXTERNAL (RFC 6887 section
    /// 13.2). Other answers are sent as they are.
    PreferFailureIgnored,
}

const NAMES: &[(Hostile, &str)] = &[
    (Hostile::WrongNonce, "wrong_nonce"),
    (Hostile::WrongOpcode, "wrong_opcode"),
    (Hostile::NoRBit, "no_r_bit"),
    (Hostile::WrongVersion, "wrong_version"),
    (Hostile::EveryTruncation, "every_truncation"),
    (Hostile::Oversize, "oversize"),
    (Hostile::NotMultipleOf4, "not_multiple_of_4"),
    (Hostile::UnknownResultCode, "unknown_result_code"),
    (Hostile::UnknownMandatoryOption, "unknown_mandatory_option"),
    (Hostile::OptionOverrun, "option_overrun"),
    (Hostile::BadOptionLength, "bad_option_length"),
    (Hostile::UnexpectedOption, "unexpected_option"),
    (Hostile::WrongInternalPort, "wrong_internal_port"),
    (Hostile::WrongProtocol, "wrong_protocol"),
    (Hostile::ExternalPortZero, "external_port_zero"),
    (Hostile::SuccessLifetimeZero, "success_lifetime_zero"),
    (Hostile::FromOtherPort, "from_other_port"),
    (Hostile::AnnounceInstead, "announce_instead"),
    (Hostile::GarbageFlood, "garbage_flood"),
    (Hostile::GarbageFloodThenValid, "garbage_flood_then_valid"),
    (Hostile::DuplicateAnswers, "duplicate_answers"),
    (Hostile::WrongNonceThenValid, "wrong_nonce_then_valid"),
    (Hostile::UnknownOptionalOption, "unknown_optional_option"),
    (Hostile::ReservedBitsSet, "reserved_bits_set"),
    (Hostile::LifetimeMax, "lifetime_max"),
    (Hostile::EpochBack, "epoch_back"),
    (Hostile::ErrorWithPayload, "error_with_payload"),
    (Hostile::HeaderOnlyError, "header_only_error"),
    (Hostile::HeaderOnlyErrorThenValid, "header_only_error_then_valid"),
    (Hostile::VersionGarbageThenValid, "version_garbage_then_valid"),
    (Hostile::LowerVersionAnswer, "lower_version_answer"),
    (Hostile::ExternalUnspecifiedV4, "external_unspecified_v4"),
    (Hostile::ExternalUnspecifiedV6, "external_unspecified_v6"),
    (Hostile::ExternalMulticastV4, "external_multicast_v4"),
    (Hostile::ExternalBroadcast, "external_broadcast"),
    (Hostile::ExternalMulticastV6, "external_multicast_v6"),
    (Hostile::PreferFailureIgnored, "prefer_failure_ignored"),
];

impl Hostile {
    /// Every case, in a stable order.
    pub fn all() -> impl Iterator<Item = Hostile> {
        NAMES.iter().map(|(h, _)| *h)
    }

    /// The stable name ("wrong_nonce", "every_truncation", ...).
    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(h, _)| *h == self).map(|(_, n)| *n).expect("every case is named")
    }

    /// The case of that name.
    pub fn from_name(name: &str) -> Option<Hostile> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(h, _)| *h)
    }

    /// [`Hostile::from_name`] for a shell's argument, with the error every
    /// shell reports for an unknown name.
    ///
    /// ```
    /// use pcp_core::server::Hostile;
    /// assert!(Hostile::parse("wrong_nonce").is_ok());
    /// let e = Hostile::parse("nope").unwrap_err();
    /// assert_eq!(e.to_string(), r#"invalid argument: name: no hostile case named "nope""#);
    /// ```
    pub fn parse(name: &str) -> crate::Result<Hostile> {
        Hostile::from_name(name)
            .ok_or_else(|| crate::Error::invalid(format!("name: no hostile case named {}", crate::quote_input(name))))
    }
}

/// A datagram to send instead of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Crafted {
    pub bytes: Vec<u8>,
    /// Send it from another socket (another port) than the server's.
    pub from_other_port: bool,
}

// Offsets in a MAP or PEER response (RFC 6887 sections 7.2, 11.1, 12.1).
const RESULT: usize = 3;
const LIFETIME: usize = 4;
const EPOCH: usize = 8;
const NONCE: usize = HEADER_SIZE;
const PROTOCOL: usize = HEADER_SIZE + 12;
const INTERNAL_PORT: usize = HEADER_SIZE + 16;
const EXTERNAL_PORT: usize = HEADER_SIZE + 18;
const EXTERNAL_ADDR: usize = HEADER_SIZE + 20;
const MAP_END: usize = HEADER_SIZE + 36;

/// A small deterministic generator: the same garbage on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn plain(bytes: Vec<u8>) -> Crafted {
    Crafted { bytes, from_other_port: false }
}

fn with(answer: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Crafted {
    let mut v = answer.to_vec();
    f(&mut v);
    plain(v)
}

fn set_external_addr(v: &mut [u8], addr: [u8; 16]) {
    v[EXTERNAL_ADDR..EXTERNAL_ADDR + 16].copy_from_slice(&addr);
}

fn v4_mapped(a: [u8; 4]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[10] = 0xff;
    b[11] = 0xff;
    b[12..].copy_from_slice(&a);
    b
}

fn garbage(rng: &mut XorShift, count: usize) -> Vec<Crafted> {
    (0..count)
        .map(|_| {
            let len = (rng.next() % (MAX_MESSAGE_SIZE as u64 + 64)) as usize;
            plain(rng.fill(len))
        })
        .collect()
}

/// What to send instead of `answer`, the valid SUCCESS answer to a MAP or
/// PEER request; `count` is how many answers this case has crafted before
/// (it moves the epoch of [`Hostile::EpochBack`] and seeds the garbage).
pub(super) fn craft(case: Hostile, answer: &[u8], count: u32) -> Vec<Crafted> {
    if answer.len() < MAP_END {
        // Not a MAP or PEER answer: nothing to corrupt.
        return vec![plain(answer.to_vec())];
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ u64::from(count + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let valid = || plain(answer.to_vec());
    let wrong_nonce = || with(answer, |v| v[NONCE] ^= 0xff);
    let header_only_error = || {
        let mut v = answer[..HEADER_SIZE].to_vec();
        v[RESULT] = 8; // NO_RESOURCES
        v[LIFETIME..LIFETIME + 4].copy_from_slice(&30u32.to_be_bytes());
        plain(v)
    };
    match case {
        Hostile::WrongNonce => vec![wrong_nonce()],
        Hostile::WrongOpcode => vec![with(answer, |v| v[1] = 0x80 | if v[1] & 0x7f == 1 { 2 } else { 1 })],
        Hostile::NoRBit => vec![with(answer, |v| v[1] &= 0x7f)],
        Hostile::WrongVersion => vec![with(answer, |v| v[0] = 3)],
        Hostile::EveryTruncation => (0..answer.len()).map(|n| plain(answer[..n].to_vec())).collect(),
        Hostile::Oversize => vec![with(answer, |v| v.resize(MAX_MESSAGE_SIZE + 4, 0))],
        Hostile::NotMultipleOf4 => (1..=3).map(|n| with(answer, |v| v.extend(std::iter::repeat_n(0, n)))).collect(),
        Hostile::UnknownResultCode => [14u8, 99, 255].iter().map(|c| with(answer, |v| v[RESULT] = *c)).collect(),
        Hostile::UnknownMandatoryOption => vec![with(answer, |v| v.extend_from_slice(&[99, 0, 0, 4, 1, 2, 3, 4]))],
        Hostile::OptionOverrun => vec![with(answer, |v| v.extend_from_slice(&[1, 0, 0, 200, 0, 0, 0, 0]))],
        Hostile::BadOptionLength => vec![with(answer, |v| v.extend_from_slice(&[1, 0, 0, 4, 192, 0, 2, 5]))],
        Hostile::UnexpectedOption => vec![with(answer, |v| v.extend_from_slice(&[2, 0, 0, 0]))],
        Hostile::WrongInternalPort => vec![with(answer, |v| {
            let p = u16::from_be_bytes([v[INTERNAL_PORT], v[INTERNAL_PORT + 1]]).wrapping_add(1);
            v[INTERNAL_PORT..INTERNAL_PORT + 2].copy_from_slice(&p.to_be_bytes());
        })],
        Hostile::WrongProtocol => vec![with(answer, |v| v[PROTOCOL] = if v[PROTOCOL] == 6 { 17 } else { 6 })],
        Hostile::ExternalPortZero => vec![with(answer, |v| v[EXTERNAL_PORT..EXTERNAL_PORT + 2].fill(0))],
        Hostile::SuccessLifetimeZero => vec![with(answer, |v| v[LIFETIME..LIFETIME + 4].fill(0))],
        Hostile::FromOtherPort => vec![Crafted { bytes: answer.to_vec(), from_other_port: true }],
        Hostile::AnnounceInstead => {
            let mut v = answer[..HEADER_SIZE].to_vec();
            v[1] = 0x80;
            v[LIFETIME..LIFETIME + 4].fill(0);
            vec![plain(v)]
        }
        Hostile::GarbageFlood => garbage(&mut rng, 100),
        Hostile::GarbageFloodThenValid => {
            let mut v = garbage(&mut rng, 100);
            v.push(valid());
            v
        }
        Hostile::DuplicateAnswers => vec![valid(), valid(), valid()],
        Hostile::WrongNonceThenValid => vec![wrong_nonce(), valid()],
        Hostile::UnknownOptionalOption => vec![with(answer, |v| v.extend_from_slice(&[200, 0, 0, 4, 1, 2, 3, 4]))],
        Hostile::ReservedBitsSet => vec![with(answer, |v| {
            v[2] = 0xff;
            v[EPOCH + 4..HEADER_SIZE].fill(0xff);
            v[PROTOCOL + 1..INTERNAL_PORT].fill(0xff);
        })],
        Hostile::LifetimeMax => vec![with(answer, |v| v[LIFETIME..LIFETIME + 4].fill(0xff))],
        Hostile::EpochBack => {
            let epoch: u32 = if count == 0 { 1_000_000 } else { 10 };
            vec![with(answer, |v| v[EPOCH..EPOCH + 4].copy_from_slice(&epoch.to_be_bytes()))]
        }
        Hostile::ErrorWithPayload => vec![with(answer, |v| {
            v[RESULT] = 2; // NOT_AUTHORIZED
            v[LIFETIME..LIFETIME + 4].copy_from_slice(&30u32.to_be_bytes());
        })],
        Hostile::HeaderOnlyError => vec![header_only_error()],
        Hostile::HeaderOnlyErrorThenValid => vec![header_only_error(), valid()],
        Hostile::VersionGarbageThenValid => {
            let mut v = rng.fill(1028);
            v[..4].copy_from_slice(&[91, 0x81, 0, 1]);
            vec![plain(v), valid()]
        }
        Hostile::LowerVersionAnswer => {
            let mut v = answer[..HEADER_SIZE].to_vec();
            v[0] = VERSION - 1;
            v[RESULT] = 1; // UNSUPP_VERSION
            v[LIFETIME..LIFETIME + 4].fill(0);
            vec![plain(v)]
        }
        Hostile::ExternalUnspecifiedV4 => vec![with(answer, |v| set_external_addr(v, v4_mapped([0, 0, 0, 0])))],
        Hostile::ExternalUnspecifiedV6 => vec![with(answer, |v| set_external_addr(v, [0; 16]))],
        Hostile::ExternalMulticastV4 => vec![with(answer, |v| set_external_addr(v, v4_mapped([224, 0, 0, 1])))],
        Hostile::ExternalBroadcast => vec![with(answer, |v| set_external_addr(v, v4_mapped([255; 4])))],
        Hostile::ExternalMulticastV6 => vec![with(answer, |v| {
            let mut a = [0u8; 16];
            a[0] = 0xff;
            a[1] = 0x02;
            a[15] = 1;
            set_external_addr(v, a)
        })],
        Hostile::PreferFailureIgnored if carries_prefer_failure(answer) => vec![with(answer, |v| {
            let p = u16::from_be_bytes([v[EXTERNAL_PORT], v[EXTERNAL_PORT + 1]]);
            let next = if p == u16::MAX { 1024 } else { p + 1 };
            v[EXTERNAL_PORT..EXTERNAL_PORT + 2].copy_from_slice(&next.to_be_bytes());
        })],
        Hostile::PreferFailureIgnored => vec![valid()],
    }
}

/// Whether a MAP answer echoes PREFER_FAILURE (option 2, length 0), as the
/// server does when the request carried it.
fn carries_prefer_failure(answer: &[u8]) -> bool {
    let is_map = answer[1] & 0x7f == 1;
    let mut at = MAP_END;
    while is_map && at + 4 <= answer.len() {
        let len = usize::from(u16::from_be_bytes([answer[at + 2], answer[at + 3]]));
        if answer[at] == 2 {
            return true;
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for h in Hostile::all() {
            assert!(seen.insert(h.name()), "{} twice", h.name());
            assert_eq!(Hostile::from_name(h.name()), Some(h));
        }
        assert_eq!(Hostile::from_name("no such case"), None);
    }

    #[test]
    fn prefer_failure_ignored_moves_the_port_only_when_the_answer_echoes_the_option() {
        let mut answer = vec![0u8; MAP_END];
        answer[1] = 0x81;
        answer[EXTERNAL_PORT..EXTERNAL_PORT + 2].copy_from_slice(&8098u16.to_be_bytes());
        let port = |c: &Crafted| u16::from_be_bytes([c.bytes[EXTERNAL_PORT], c.bytes[EXTERNAL_PORT + 1]]);
        assert_eq!(port(&craft(Hostile::PreferFailureIgnored, &answer, 0)[0]), 8098, "no option: as it is");
        // A FILTER (20 bytes) first, then PREFER_FAILURE.
        answer.extend_from_slice(&[3, 0, 0, 20]);
        answer.extend_from_slice(&[0; 20]);
        answer.extend_from_slice(&[2, 0, 0, 0]);
        assert_eq!(port(&craft(Hostile::PreferFailureIgnored, &answer, 0)[0]), 8099);
    }

    #[test]
    fn every_truncation_is_every_shorter_prefix() {
        let answer = vec![7u8; 60];
        let sent = craft(Hostile::EveryTruncation, &answer, 0);
        assert_eq!(sent.len(), 60);
        assert!(sent.iter().enumerate().all(|(n, c)| c.bytes.len() == n));
    }
}
