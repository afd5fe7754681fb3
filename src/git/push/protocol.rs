//! The receive-pack protocol (v1) as bytes: pkt-lines, the ref advertisement, our update
//! command, side-band demultiplexing and the report-status. Pure: transports move the bytes.

use std::collections::BTreeMap;

use gix::ObjectId;
use gix_packetline::{BandRef, PacketLineRef, decode};

/// One pkt-line, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    Data(Vec<u8>),
    Flush,
    Delimiter,
    ResponseEnd,
}

/// Splits pkt-lines off the front of a buffer that grows as bytes arrive. Lines are taken
/// from a moving start, so reading a buffer of n bytes costs O(n), not a copy per line.
#[derive(Debug, Default)]
pub(crate) struct LineBuffer {
    buf: Vec<u8>,
    start: usize,
}

impl LineBuffer {
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        // Drop what was read once it is at least half the buffer: amortised O(1) per byte.
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line, `Ok(None)` if more bytes are needed.
    pub(crate) fn next_line(&mut self) -> Result<Option<Line>, String> {
        let (line, consumed) =
            match decode::streaming(&self.buf[self.start..]).map_err(|e| e.to_string())? {
                decode::Stream::Incomplete { .. } => return Ok(None),
                decode::Stream::Complete {
                    line,
                    bytes_consumed,
                } => (
                    match line {
                        PacketLineRef::Data(d) => Line::Data(d.to_vec()),
                        PacketLineRef::Flush => Line::Flush,
                        PacketLineRef::Delimiter => Line::Delimiter,
                        PacketLineRef::ResponseEnd => Line::ResponseEnd,
                    },
                    bytes_consumed,
                ),
            };
        self.start += consumed;
        Ok(Some(line))
    }
}

/// At most this many lines of server output (progress, hook output) are kept and shown.
pub(crate) const MAX_SERVER_LINES: usize = 1_000;
/// A longer line of server output is cut to this many characters.
pub(crate) const MAX_SERVER_LINE_CHARS: usize = 1_000;

/// What the remote's receive-pack advertised.
#[derive(Debug, Clone, Default)]
pub(crate) struct Advertisement {
    /// Ref name -> the object it points to.
    pub refs: BTreeMap<String, ObjectId>,
    /// Objects the remote has without a ref (`.have` lines, from alternates).
    pub extra_haves: Vec<ObjectId>,
    /// Capability names (`report-status`, `side-band-64k`, `agent=...`).
    pub capabilities: Vec<String>,
}

impl Advertisement {
    pub(crate) fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

/// Server text made safe for a terminal: control characters (C0 but tab, DEL, C1) and
/// bidirectional overrides become visible escapes (`\x1b`, `\u{202e}`), a tab a space. Applied
/// to everything a server sends before it goes into an error or an observer event.
pub(crate) fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push(' '),
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{{{n:x}}}"));
                }
            }
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// [`sanitize`] for bytes that should be UTF-8.
pub(crate) fn sanitize_bytes(bytes: &[u8]) -> String {
    sanitize(&String::from_utf8_lossy(bytes))
}

fn text(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// Parses the advertisement's data lines (up to, not including, the flush).
pub(crate) fn parse_advertisement(lines: &[Vec<u8>]) -> Result<Advertisement, String> {
    let mut adv = Advertisement::default();
    for (i, line) in lines.iter().enumerate() {
        let mut line = text(line);
        if i == 0 {
            if line.starts_with(b"ERR ") {
                return Err(sanitize_bytes(&line[4..]));
            }
            if line.starts_with(b"version ") {
                return Err(format!(
                    "server answered with protocol {}, we speak v1",
                    sanitize_bytes(line)
                ));
            }
            if line.contains(&0) {
                let (caps, nul) = gix_transport::client::Capabilities::from_bytes(line)
                    .map_err(|e| format!("malformed capabilities: {e}"))?;
                adv.capabilities = caps
                    .iter()
                    .map(|c| match c.value() {
                        Some(v) => format!("{}={}", c.name(), v),
                        None => c.name().to_string(),
                    })
                    .collect();
                line = &line[..nul];
            }
        }
        if line.starts_with(b"shallow ") {
            continue;
        }
        let text = std::str::from_utf8(line).map_err(|_| "ref advertisement is not UTF-8")?;
        let (id, name) = text
            .split_once(' ')
            .ok_or_else(|| format!("malformed ref advertisement line {text:?}"))?;
        let id = ObjectId::from_hex(id.as_bytes())
            .map_err(|_| format!("malformed object id in ref advertisement {text:?}"))?;
        match name {
            "capabilities^{}" => {}
            ".have" => adv.extra_haves.push(id),
            _ if name.ends_with("^{}") => {}
            _ => {
                adv.refs.insert(name.to_owned(), id);
            }
        }
    }
    Ok(adv)
}

/// One ref update: `old` is the null id to create the ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    pub old: ObjectId,
    pub new: ObjectId,
    pub name: String,
}

/// The capabilities we ask for, among those the server offers.
pub(crate) fn request_capabilities(adv: &Advertisement) -> Vec<&'static str> {
    let mut caps = Vec::new();
    for cap in ["report-status", "side-band-64k"] {
        if adv.has(cap) {
            caps.push(cap);
        }
    }
    if !caps.contains(&"side-band-64k") && adv.has("side-band") {
        caps.push("side-band");
    }
    if adv.has("quiet") {
        // No progress chatter; hook output and errors still arrive.
        caps.push("quiet");
    }
    caps
}

/// The request body: the command, a flush, then the pack (none for a delete-only or no-op
/// request, which we never send).
/// The whole receive-pack request for a remote: the capabilities we ask of this advertisement,
/// the command and the pack (consumed, so its bytes are freed once encoded). Also returns whether
/// the response will come in side-band.
pub(crate) fn request(command: &Command, adv: &Advertisement, pack: Vec<u8>) -> (Vec<u8>, bool) {
    let caps = request_capabilities(adv);
    let sideband = caps.iter().any(|c| c.starts_with("side-band"));
    (encode_request(command, &caps, &pack), sideband)
}

pub(crate) fn encode_request(command: &Command, capabilities: &[&str], pack: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pack.len() + 200);
    let mut line = format!("{} {} {}\0", command.old, command.new, command.name);
    line.push_str(&capabilities.join(" "));
    line.push_str(" agent=capi-manage/");
    line.push_str(env!("CARGO_PKG_VERSION"));
    gix_packetline::blocking_io::encode::data_to_write(line.as_bytes(), &mut out)
        .expect("writing to a Vec cannot fail");
    gix_packetline::blocking_io::encode::flush_to_write(&mut out).expect("Vec");
    out.extend_from_slice(pack);
    out
}

/// The result of a push as the remote reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Report {
    /// `Err(reason)` if unpacking failed.
    pub unpack: Option<Result<(), String>>,
    /// Per ref: `Err(reason)` for `ng`.
    pub refs: Vec<(String, Result<(), String>)>,
    /// Side-band progress and error text (hook output), line by line.
    pub messages: Vec<String>,
}

/// Parses the response: side-band demultiplexed when `sideband`, then report-status lines.
pub(crate) fn parse_response(
    response: &[u8],
    sideband: bool,
    mut on_message: impl FnMut(&str),
) -> Result<Report, String> {
    let mut report = Report::default();
    let mut status_bytes = Vec::new();
    if sideband {
        let mut lines = LineBuffer::default();
        lines.extend(response);
        let mut partial = String::new();
        let mut left_out = 0usize;
        let mut keep = |message: &str, report: &mut Report| {
            if message.is_empty() {
                return;
            }
            if report.messages.len() >= MAX_SERVER_LINES {
                left_out += 1;
                return;
            }
            let mut message = sanitize(message);
            if let Some((cut, _)) = message.char_indices().nth(MAX_SERVER_LINE_CHARS) {
                message.truncate(cut);
                message.push_str(" [cut]");
            }
            on_message(&message);
            report.messages.push(message);
        };
        while let Some(line) = lines.next_line()? {
            let Line::Data(data) = line else {
                break;
            };
            match PacketLineRef::Data(&data)
                .decode_band()
                .map_err(|e| e.to_string())?
            {
                BandRef::Data(d) => status_bytes.extend_from_slice(d),
                BandRef::Progress(d) | BandRef::Error(d) => {
                    partial.push_str(&String::from_utf8_lossy(d));
                    // Progress uses `\r` to redraw; hook output uses `\n`. One pass over the
                    // new text, then one cut of what was consumed.
                    let mut from = 0;
                    while let Some(rel) = partial[from..].find(['\n', '\r']) {
                        let end = from + rel;
                        keep(partial[from..end].trim_end(), &mut report);
                        from = end + 1;
                    }
                    partial.drain(..from);
                    if partial.len() > 4 * MAX_SERVER_LINE_CHARS {
                        // A "line" that never ends: keep its start only.
                        keep(&partial.clone(), &mut report);
                        partial.clear();
                    }
                }
            }
        }
        keep(partial.trim(), &mut report);
        if left_out > 0 {
            let note = format!("({left_out} more lines of server output left out)");
            on_message(&note);
            report.messages.push(note);
        }
    } else {
        status_bytes = response.to_vec();
    }
    let mut lines = LineBuffer::default();
    lines.extend(&status_bytes);
    while let Some(line) = lines.next_line()? {
        let Line::Data(data) = line else { break };
        let line = String::from_utf8_lossy(text(&data)).into_owned();
        if let Some(rest) = line.strip_prefix("unpack ") {
            let rest = sanitize(rest);
            report.unpack = Some(if rest == "ok" { Ok(()) } else { Err(rest) });
        } else if let Some(name) = line.strip_prefix("ok ") {
            report.refs.push((name.to_owned(), Ok(())));
        } else if let Some(rest) = line.strip_prefix("ng ") {
            let (name, reason) = rest.split_once(' ').unwrap_or((rest, "rejected"));
            report.refs.push((name.to_owned(), Err(sanitize(reason))));
        } else if let Some(err) = line.strip_prefix("ERR ") {
            return Err(sanitize(err));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        gix_packetline::blocking_io::encode::data_to_write(s, &mut out).unwrap();
        out
    }

    #[test]
    fn advertisement_with_capabilities_and_refs() {
        let a = "1111111111111111111111111111111111111111";
        let b = "2222222222222222222222222222222222222222";
        let lines = vec![
            format!("{a} refs/heads/main\0report-status delete-refs side-band-64k quiet ofs-delta agent=git/2.39\n").into_bytes(),
            format!("{b} refs/tags/v1\n").into_bytes(),
            format!("{a} refs/tags/v1^{{}}\n").into_bytes(),
            format!("{b} .have\n").into_bytes(),
        ];
        let adv = parse_advertisement(&lines).unwrap();
        assert_eq!(adv.refs.len(), 2);
        assert_eq!(adv.refs["refs/heads/main"].to_string(), a);
        assert_eq!(adv.extra_haves.len(), 1);
        assert!(adv.has("report-status") && adv.has("agent=git/2.39"));
        assert_eq!(
            request_capabilities(&adv),
            ["report-status", "side-band-64k", "quiet"]
        );

        let empty = vec![
            b"0000000000000000000000000000000000000000 capabilities^{}\0report-status\n".to_vec(),
        ];
        let adv = parse_advertisement(&empty).unwrap();
        assert!(adv.refs.is_empty() && adv.has("report-status"));
    }

    #[test]
    fn request_is_command_flush_pack() {
        let cmd = Command {
            old: ObjectId::null(gix::hash::Kind::Sha1),
            new: ObjectId::from_hex(b"2222222222222222222222222222222222222222").unwrap(),
            name: "refs/heads/main".into(),
        };
        let out = encode_request(&cmd, &["report-status"], b"PACK");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("00"), "{text}");
        assert!(text.contains(" refs/heads/main\0report-status agent=capi-manage/"));
        assert!(text.ends_with("0000PACK"));
    }

    #[test]
    fn server_text_is_escaped_before_it_reaches_errors_and_events() {
        // Side-band: an escape sequence (clear screen), a bell, a C1 CSI and a bidi override.
        let mut band = vec![2u8];
        band.extend_from_slice("hook: \x1b[2J\x07ok\u{9b}31m \u{202e}txt.exe\tx\n".as_bytes());
        let mut status = pkt(b"unpack \x1b]0;pwned\x07\n");
        status.extend(pkt(b"ng refs/heads/main \x1b[31mdenied\n"));
        status.extend(b"0000");
        let mut response = pkt(&band);
        let mut data = vec![1u8];
        data.extend_from_slice(&status);
        response.extend(pkt(&data));
        response.extend(b"0000");
        let mut seen = Vec::new();
        let report = parse_response(&response, true, |m| seen.push(m.to_owned())).unwrap();
        assert_eq!(seen, ["hook: \\x1b[2J\\x07ok\\x9b31m \\u{202e}txt.exe x"]);
        assert_eq!(report.messages, seen);
        assert_eq!(report.unpack, Some(Err("\\x1b]0;pwned\\x07".into())));
        assert_eq!(report.refs[0].1, Err("\\x1b[31mdenied".into()));
        let err = parse_response(&pkt(b"ERR \x1b[2Jgone\n"), false, |_| {}).unwrap_err();
        assert_eq!(err, "\\x1b[2Jgone");
        let err = parse_advertisement(&[b"ERR no \x1b[5mrepo\n".to_vec()]).unwrap_err();
        assert_eq!(err, "no \\x1b[5mrepo");
        let all_safe = |s: &str| !s.chars().any(|c| c.is_control() || c == '\u{202e}');
        assert!(seen.iter().all(|m| all_safe(m)) && all_safe(&err));
    }

    #[test]
    fn a_flood_of_server_output_is_read_in_linear_time_and_capped() {
        // 200,000 side-band progress lines in one response, then the report.
        let mut response = Vec::new();
        for i in 0..200_000 {
            let mut band = vec![2u8];
            band.extend_from_slice(format!("remote: line {i}\n").as_bytes());
            response.extend_from_slice(&pkt(&band));
        }
        let mut status = pkt(b"unpack ok\n");
        status.extend_from_slice(&pkt(b"ok refs/heads/main\n"));
        status.extend_from_slice(b"0000");
        let mut band = vec![1u8];
        band.extend_from_slice(&status);
        response.extend_from_slice(&pkt(&band));
        response.extend_from_slice(b"0000");
        let started = std::time::Instant::now();
        let mut shown = 0;
        let report = parse_response(&response, true, |_| shown += 1).unwrap();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(report.refs.len(), 1);
        assert_eq!(report.messages.len(), MAX_SERVER_LINES + 1);
        assert_eq!(shown, MAX_SERVER_LINES + 1);
        assert!(
            report
                .messages
                .last()
                .unwrap()
                .contains("199000 more lines"),
            "{:?}",
            report.messages.last()
        );
        // A single endless line is cut.
        let mut band = vec![2u8];
        band.extend(std::iter::repeat_n(b'x', 60_000));
        let mut response = Vec::new();
        for chunk in band[1..].chunks(60_000) {
            let mut b = vec![2u8];
            b.extend_from_slice(chunk);
            response.extend_from_slice(&pkt(&b));
        }
        response.extend_from_slice(b"0000");
        let report = parse_response(&response, true, |_| {}).unwrap();
        assert!(
            report
                .messages
                .iter()
                .all(|m| m.chars().count() <= MAX_SERVER_LINE_CHARS + 6)
        );
    }

    #[test]
    fn report_through_sideband_with_hook_output() {
        let mut status = pkt(b"unpack ok\n");
        status.extend(pkt(b"ng refs/heads/main pre-receive hook declined\n"));
        status.extend(b"0000");
        let mut response = Vec::new();
        let mut band = vec![2u8];
        band.extend_from_slice(b"Resolving deltas: 100% (1/1)\rno secrets allowed\n");
        response.extend(pkt(&band));
        let mut band = vec![1u8];
        band.extend_from_slice(&status);
        response.extend(pkt(&band));
        response.extend(b"0000");
        let mut seen = Vec::new();
        let report = parse_response(&response, true, |m| seen.push(m.to_owned())).unwrap();
        assert_eq!(report.unpack, Some(Ok(())));
        assert_eq!(
            report.refs,
            [(
                "refs/heads/main".to_owned(),
                Err("pre-receive hook declined".to_owned())
            )]
        );
        assert_eq!(seen, ["Resolving deltas: 100% (1/1)", "no secrets allowed"]);
    }
}
