//! TSIG (RFC 8945) for zone transfers, NOTIFY and UPDATE: keys from the
//! config, request verification, signing of every message of a response
//! stream (the first with the full TSIG variables, later ones with timers
//! only) and the error answers (BADKEY, BADSIG unsigned; BADTIME signed).

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigError, make_tsig_record};
use hickory_proto::rr::{Name, TSigner};
use hickory_proto::serialize::binary::BinEncoder;

pub(crate) use hickory_proto::rr::rdata::tsig::TsigAlgorithm;

/// Seconds of clock skew accepted on a signed request.
pub(crate) const FUDGE: u16 = 300;

pub(crate) fn parse_algorithm(s: &str) -> Result<TsigAlgorithm, String> {
    match s.trim_end_matches('.').to_ascii_lowercase().as_str() {
        "hmac-sha256" => Ok(TsigAlgorithm::HmacSha256),
        "hmac-sha384" => Ok(TsigAlgorithm::HmacSha384),
        "hmac-sha512" => Ok(TsigAlgorithm::HmacSha512),
        other => Err(format!(
            "`{other}` is not one of hmac-sha256, hmac-sha384, hmac-sha512"
        )),
    }
}

/// A named shared secret. `Debug` never shows the secret.
#[derive(Clone)]
pub(crate) struct TsigKey {
    pub(crate) name: Name,
    /// The name as configured, lower case, without the trailing dot.
    pub(crate) name_str: String,
    pub(crate) algorithm: TsigAlgorithm,
    pub(crate) signer: TSigner,
    /// Zones this key may change with UPDATE (none: transfers only).
    pub(crate) update_zones: Vec<crate::model::ZoneName>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name_str)
            .field("algorithm", &self.algorithm)
            .field("update_zones", &self.update_zones)
            .finish_non_exhaustive()
    }
}

impl TsigKey {
    pub(crate) fn new(
        name: &str,
        algorithm: TsigAlgorithm,
        secret_b64: &str,
    ) -> Result<Self, String> {
        let host = crate::model::parse_host("name", name).map_err(|e| e.message)?;
        let secret = data_encoding::BASE64
            .decode(secret_b64.trim().as_bytes())
            .map_err(|e| format!("secret is not base64: {e}"))?;
        if secret.len() < 16 {
            return Err("secret: at least 16 bytes (128 bits) after base64 decoding".to_owned());
        }
        let signer = TSigner::new(secret, algorithm.clone(), host.clone(), FUDGE)
            .map_err(|e| format!("key `{name}`: {e}"))?;
        Ok(Self {
            name_str: host.to_ascii().trim_end_matches('.').to_owned(),
            name: host,
            algorithm,
            signer,
            update_zones: Vec::new(),
        })
    }
}

fn now() -> u64 {
    u64::try_from(mc_kit::clock::unix_now()).unwrap_or(0)
}

/// Why a signed request was refused (answered NOTAUTH).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TsigRefused {
    #[error("request is not signed")]
    Unsigned,
    #[error("unknown key")]
    UnknownKey,
    #[error("bad signature")]
    BadSig,
    #[error("signature time outside the fudge window")]
    BadTime,
}

/// Verifies the TSIG on `raw` (a request) against `keys`; returns the key
/// used and the request MAC (needed to sign the response).
pub(crate) fn verify_request<'k>(
    raw: &[u8],
    message: &Message,
    keys: impl IntoIterator<Item = &'k TsigKey>,
) -> Result<(&'k TsigKey, Vec<u8>), TsigRefused> {
    match check(raw, message, keys)? {
        (key, mac, true) => Ok((key, mac)),
        (_, _, false) => Err(TsigRefused::BadTime),
    }
}

/// Checks key and MAC; returns the key, the request MAC and whether the
/// signing time is inside the fudge window (a BADTIME answer is signed, so
/// its caller needs the key and MAC too).
pub(crate) fn check<'k>(
    raw: &[u8],
    message: &Message,
    keys: impl IntoIterator<Item = &'k TsigKey>,
) -> Result<(&'k TsigKey, Vec<u8>, bool), TsigRefused> {
    let sig = message.signature.as_ref().ok_or(TsigRefused::Unsigned)?;
    let key = keys
        .into_iter()
        .find(|k| k.name == sig.name && k.algorithm == sig.data.algorithm)
        .ok_or(TsigRefused::UnknownKey)?;
    let (mac, _time, window) = key
        .signer
        .verify_message_byte(raw, None, true)
        .map_err(|_| TsigRefused::BadSig)?;
    let now = now();
    let in_time = window.contains(&now) || window.end == now;
    Ok((key, mac, in_time))
}

/// Encodes a response to a signed request, signed with the request's key
/// and MAC (RFC 8945 §5.3); `error` BADTIME carries our time in Other Data
/// (§5.2.3).
pub(crate) fn sign_response(
    key: &TsigKey,
    request_mac: &[u8],
    msg: &mut Message,
    error: Option<TsigError>,
) -> Option<Vec<u8>> {
    msg.signature = None;
    let unsigned = msg.to_vec().ok()?;
    let time = now();
    let other = match error {
        Some(TsigError::BadTime) => {
            let t = time.to_be_bytes();
            t.get(2..).map(<[u8]>::to_vec).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let stub = TSIG::new(
        key.algorithm.clone(),
        time,
        FUDGE,
        Vec::new(),
        msg.metadata.id,
        error,
        other,
    );
    let tbs = key
        .signer
        .encode_response_tbs(request_mac, &unsigned, &stub)
        .ok()?;
    let mac = key.signer.sign(&tbs).ok()?;
    msg.signature = Some(Box::new(make_tsig_record(
        key.name.clone(),
        stub.set_mac(mac),
    )));
    msg.to_vec().ok()
}

/// Encodes an error response whose TSIG is unsigned (BADKEY, BADSIG: RFC
/// 8945 §5.2.1-2): the request's key name and algorithm, no MAC.
pub(crate) fn unsigned_error(
    request: &Message,
    msg: &mut Message,
    error: TsigError,
) -> Option<Vec<u8>> {
    let sig = request.signature.as_ref()?;
    msg.signature = Some(Box::new(make_tsig_record(
        sig.name.clone(),
        TSIG::new(
            sig.data.algorithm.clone(),
            now(),
            FUDGE,
            Vec::new(),
            msg.metadata.id,
            Some(error),
            Vec::new(),
        ),
    )));
    msg.to_vec().ok()
}

/// Signs the messages of one response stream in order.
pub(crate) struct StreamSigner<'k> {
    key: &'k TsigKey,
    previous_mac: Vec<u8>,
    first: bool,
    time: u64,
}

impl<'k> StreamSigner<'k> {
    pub(crate) fn new(key: &'k TsigKey, request_mac: Vec<u8>) -> Self {
        Self {
            key,
            previous_mac: request_mac,
            first: true,
            time: now(),
        }
    }

    /// Encodes `msg` with a TSIG record appended.
    pub(crate) fn sign(&mut self, msg: &mut Message) -> Option<Vec<u8>> {
        msg.signature = None;
        let unsigned = msg.to_vec().ok()?;
        let stub = TSIG::new(
            self.key.algorithm.clone(),
            self.time,
            FUDGE,
            Vec::new(),
            msg.metadata.id,
            None,
            Vec::new(),
        );
        let mut tbs = Vec::with_capacity(unsigned.len() + self.previous_mac.len() + 128);
        {
            let mut enc = BinEncoder::new(&mut tbs);
            enc.emit_u16(u16::try_from(self.previous_mac.len()).ok()?)
                .ok()?;
            enc.emit_vec(&self.previous_mac).ok()?;
            enc.emit_vec(&unsigned).ok()?;
            if self.first {
                stub.emit_tsig_for_mac(&mut enc, &self.key.name).ok()?;
            } else {
                enc.emit_u16(u16::try_from(self.time >> 32).ok()?).ok()?;
                enc.emit_u32(u32::try_from(self.time & 0xffff_ffff).ok()?)
                    .ok()?;
                enc.emit_u16(FUDGE).ok()?;
            }
        }
        let mac = self.key.signer.sign(&tbs).ok()?;
        self.first = false;
        self.previous_mac = mac.clone();
        msg.signature = Some(Box::new(make_tsig_record(
            self.key.name.clone(),
            stub.set_mac(mac),
        )));
        msg.to_vec().ok()
    }
}

/// A signed request (NOTIFY) from us; returns the encoded message.
pub(crate) fn sign_request(key: &TsigKey, msg: &mut Message) -> Option<Vec<u8>> {
    let (sig, _) = key.signer.sign_message(msg, now()).ok()?;
    msg.signature = Some(sig);
    msg.to_vec().ok()
}
