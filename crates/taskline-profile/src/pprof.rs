//! pprof's `profile.proto`, written and read by hand.
//!
//! The format is a dozen small messages (`Profile`, `Sample`, `Label`,
//! `Location`, `Line`, `Function`, `Mapping`, `ValueType`) of varints,
//! strings and packed varint arrays, so a ~100-line protobuf writer and
//! reader do it: no `prost`, no build script, no `.proto` compilation. The
//! reader ([`decode`]) is what `taskline flamegraph` and the tests use; it
//! accepts gzipped or plain files from any pprof writer (packed or
//! unpacked repeated fields, unknown fields skipped) and resolves string
//! indices.
//!
//! What taskline writes: sample types `samples/count` and
//! `cpu/nanoseconds`, period type `cpu/nanoseconds`; one location per
//! address with its (inlined) lines; sample labels `spawn_site`
//! (`file:line:col`), `task`, `worker` and `thread`, all strings, so
//! `go tool pprof -tagfocus=spawn_site=main.rs:42` selects a site.

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;

use crate::error::ProfileError;
use crate::profile::Profile;
use crate::symbolize::Symbols;

/// Decompressed profiles larger than this are refused by [`decode`].
pub const MAX_DECODED_BYTES: u64 = 1 << 30;

#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    /// A varint field, omitted when 0 (proto3's default).
    fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.tag(field, 0);
            self.varint(v);
        }
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.tag(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn msg(&mut self, field: u32, f: impl FnOnce(&mut Pb)) {
        let mut inner = Pb::default();
        f(&mut inner);
        self.bytes(field, &inner.0);
    }

    fn packed(&mut self, field: u32, values: impl IntoIterator<Item = u64>) {
        let mut inner = Pb::default();
        for v in values {
            inner.varint(v);
        }
        if !inner.0.is_empty() {
            self.bytes(field, &inner.0);
        }
    }
}

#[derive(Default)]
struct Strings {
    ids: HashMap<String, u64>,
    list: Vec<String>,
}

impl Strings {
    fn id(&mut self, s: &str) -> u64 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.list.len() as u64;
        self.list.push(s.to_owned());
        self.ids.insert(s.to_owned(), id);
        id
    }
}

/// Encodes `profile` (named by `symbols`) as a gzipped `profile.proto`.
pub(crate) fn encode(profile: &Profile, symbols: &Symbols) -> Result<Vec<u8>, ProfileError> {
    let mut strings = Strings::default();
    strings.id("");
    let mut out = Pb::default();
    let value_type = |out: &mut Pb, strings: &mut Strings, field: u32, ty: &str, unit: &str| {
        let (t, u) = (strings.id(ty), strings.id(unit));
        out.msg(field, |m| {
            m.uint(1, t);
            m.uint(2, u);
        });
    };
    value_type(&mut out, &mut strings, 1, "samples", "count");
    value_type(&mut out, &mut strings, 1, "cpu", "nanoseconds");

    let mut location_ids: HashMap<u64, u64> = HashMap::new();
    let mut locations: Vec<u64> = Vec::new();
    let keys: [u64; 4] = [
        strings.id("spawn_site"),
        strings.id("task"),
        strings.id("worker"),
        strings.id("thread"),
    ];
    for s in &profile.samples {
        let ids: Vec<u64> = s
            .stack
            .iter()
            .map(|&addr| {
                *location_ids.entry(addr).or_insert_with(|| {
                    locations.push(addr);
                    locations.len() as u64
                })
            })
            .collect();
        let mut labels: Vec<(u64, u64)> = Vec::with_capacity(4);
        if let Some(site) = &s.site {
            labels.push((keys[0], strings.id(&site.name)));
        }
        if s.task != 0 {
            labels.push((keys[1], strings.id(&s.task.to_string())));
        }
        if let Some(w) = s.worker {
            labels.push((keys[2], strings.id(&w.to_string())));
        }
        labels.push((keys[3], strings.id(&s.thread)));
        out.msg(2, |m| {
            m.packed(1, ids.iter().copied());
            m.packed(2, [s.count, s.count.saturating_mul(profile.period_ns)]);
            for (k, v) in labels {
                m.msg(3, |l| {
                    l.uint(1, k);
                    l.uint(2, v);
                });
            }
        });
    }

    for (i, m) in symbols.mappings.iter().enumerate() {
        let file = strings.id(&m.path);
        out.msg(3, |p| {
            p.uint(1, i as u64 + 1);
            p.uint(2, m.start);
            p.uint(3, m.limit);
            p.uint(4, m.offset);
            p.uint(5, file);
            for field in 7..=10 {
                p.uint(field, 1); // has_functions, filenames, line numbers, inline frames
            }
        });
    }

    let mut function_ids: HashMap<(Arc<str>, Arc<str>), u64> = HashMap::new();
    let mut functions: Vec<(u64, u64)> = Vec::new();
    for (i, &addr) in locations.iter().enumerate() {
        let frames = symbols.frames.get(&addr).map_or(&[][..], Vec::as_slice);
        let lines: Vec<(u64, u64)> = frames
            .iter()
            .map(|f| {
                let key = (f.function.clone(), f.file.clone());
                let id = match function_ids.get(&key) {
                    Some(&id) => id,
                    None => {
                        functions.push((strings.id(&f.function), strings.id(&f.file)));
                        let id = functions.len() as u64;
                        function_ids.insert(key, id);
                        id
                    }
                };
                (id, u64::from(f.line))
            })
            .collect();
        let mapping = symbols.mapping_of(addr).map_or(0, |m| m as u64 + 1);
        out.msg(4, |l| {
            l.uint(1, i as u64 + 1);
            l.uint(2, mapping);
            l.uint(3, addr);
            for (function, line) in lines {
                l.msg(4, |ln| {
                    ln.uint(1, function);
                    ln.uint(2, line);
                });
            }
        });
    }
    for (i, (name, file)) in functions.iter().enumerate() {
        out.msg(5, |f| {
            f.uint(1, i as u64 + 1);
            f.uint(2, *name);
            f.uint(3, *name);
            f.uint(4, *file);
        });
    }
    let time_nanos = profile
        .start
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
    let duration = u64::try_from(profile.duration.as_nanos()).unwrap_or(u64::MAX >> 1);
    let (cpu, ns) = (strings.id("cpu"), strings.id("nanoseconds"));
    for s in &strings.list {
        out.bytes(6, s.as_bytes());
    }
    out.uint(9, time_nanos);
    out.uint(10, duration);
    out.msg(11, |m| {
        m.uint(1, cpu);
        m.uint(2, ns);
    });
    out.uint(12, profile.period_ns);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&out.0)?;
    Ok(gz.finish()?)
}

/// Why a pprof file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a valid pprof profile: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

/// A decoded pprof profile (the parts taskline reads), strings resolved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PprofProfile {
    /// `(type, unit)` of each sample value, e.g. `("cpu", "nanoseconds")`.
    pub sample_types: Vec<(String, String)>,
    /// The samples.
    pub samples: Vec<PprofSample>,
    /// Locations by id: their lines, innermost (inlined) first.
    pub locations: HashMap<u64, PprofLocation>,
    /// `(type, unit)` of the sampling period.
    pub period_type: (String, String),
    /// The sampling period, in `period_type` units.
    pub period: i64,
    /// Wall time covered, in nanoseconds.
    pub duration_nanos: i64,
}

/// A decoded sample.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PprofSample {
    /// Location ids, innermost first.
    pub location_ids: Vec<u64>,
    /// One value per sample type.
    pub values: Vec<i64>,
    /// String labels `(key, value)`; numeric labels as their decimal value.
    pub labels: Vec<(String, String)>,
}

impl PprofSample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A decoded location.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PprofLocation {
    /// The instruction address.
    pub address: u64,
    /// Source lines, innermost first (the last is the function the others
    /// were inlined into).
    pub lines: Vec<PprofLine>,
}

/// A decoded line of a location.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PprofLine {
    /// The function's name.
    pub function: String,
    /// Its source file.
    pub file: String,
    /// The line (0 = unknown).
    pub line: i64,
}

impl PprofProfile {
    /// The function names of `sample`'s stack, innermost first (inlined
    /// frames expanded; an address without symbols as `0x…`).
    pub fn function_names(&self, sample: &PprofSample) -> Vec<String> {
        let mut out = Vec::new();
        for id in &sample.location_ids {
            match self.locations.get(id) {
                Some(loc) if !loc.lines.is_empty() => {
                    out.extend(loc.lines.iter().map(|l| l.function.clone()));
                }
                Some(loc) => out.push(format!("{:#x}", loc.address)),
                None => out.push(format!("location {id}")),
            }
        }
        out
    }

    /// The index of the sample value of type `ty` (e.g. `"cpu"`).
    pub fn value_index(&self, ty: &str) -> Option<usize> {
        self.sample_types.iter().position(|(t, _)| t == ty)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }

    fn done(&self) -> bool {
        self.at >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.at) else {
                return err("truncated varint");
            };
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        err("varint longer than 10 bytes")
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError("length".into()))?;
        let end = self
            .at
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| DecodeError("length past the end".into()))?;
        let b = &self.buf[self.at..end];
        self.at = end;
        Ok(b)
    }

    /// The next field: `(number, wire type)`.
    fn field(&mut self) -> Result<(u32, u8), DecodeError> {
        let key = self.varint()?;
        let field = u32::try_from(key >> 3).map_err(|_| DecodeError("field number".into()))?;
        Ok((field, (key & 7) as u8))
    }

    fn skip(&mut self, wire: u8) -> Result<(), DecodeError> {
        let n = match wire {
            0 => return self.varint().map(drop),
            1 => 8,
            2 => return self.bytes().map(drop),
            5 => 4,
            w => return err(format!("unsupported wire type {w}")),
        };
        if self.at + n > self.buf.len() {
            return err("truncated fixed field");
        }
        self.at += n;
        Ok(())
    }

    /// A repeated varint field, packed (wire 2) or not (wire 0).
    fn repeated(&mut self, wire: u8, out: &mut Vec<u64>) -> Result<(), DecodeError> {
        match wire {
            0 => out.push(self.varint()?),
            2 => {
                let mut inner = Reader::new(self.bytes()?);
                while !inner.done() {
                    out.push(inner.varint()?);
                }
            }
            w => return err(format!("wire type {w} for a repeated varint")),
        }
        Ok(())
    }

    /// Calls `f(field, wire, reader)` for every field of a message.
    fn each(
        buf: &'a [u8],
        mut f: impl FnMut(u32, u8, &mut Reader<'a>) -> Result<bool, DecodeError>,
    ) -> Result<(), DecodeError> {
        let mut r = Reader::new(buf);
        while !r.done() {
            let (field, wire) = r.field()?;
            if !f(field, wire, &mut r)? {
                r.skip(wire)?;
            }
        }
        Ok(())
    }
}

/// Decodes a pprof `profile.proto`, gzipped or not.
///
/// ```
/// let err = taskline_profile::pprof::decode(b"\x1f\x8bnot gzip").unwrap_err();
/// assert!(err.to_string().starts_with("not a valid pprof profile"));
/// ```
pub fn decode(bytes: &[u8]) -> Result<PprofProfile, DecodeError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_DECODED_BYTES + 1)
            .read_to_end(&mut raw)
            .map_err(|e| DecodeError(format!("gzip: {e}")))?;
        if raw.len() as u64 > MAX_DECODED_BYTES {
            return err("larger than 1 GiB decompressed");
        }
        decode_raw(&raw)
    } else {
        decode_raw(bytes)
    }
}

/// A raw location: `(id, address, [(function id, line)])`.
type RawLocation = (u64, u64, Vec<(u64, i64)>);

#[derive(Default)]
struct RawSample {
    locations: Vec<u64>,
    values: Vec<u64>,
    labels: Vec<(u64, u64, Option<i64>)>,
}

fn decode_raw(buf: &[u8]) -> Result<PprofProfile, DecodeError> {
    let mut strings: Vec<&str> = Vec::new();
    let mut sample_types: Vec<(u64, u64)> = Vec::new();
    let mut samples: Vec<RawSample> = Vec::new();
    let mut locations: Vec<RawLocation> = Vec::new();
    let mut functions: HashMap<u64, (u64, u64)> = HashMap::new();
    let mut period_type = (0, 0);
    let mut period = 0i64;
    let mut duration = 0i64;
    let value_type = |b: &[u8]| -> Result<(u64, u64), DecodeError> {
        let mut vt = (0, 0);
        Reader::each(b, |f, w, r| {
            Ok(match (f, w) {
                (1, 0) => {
                    vt.0 = r.varint()?;
                    true
                }
                (2, 0) => {
                    vt.1 = r.varint()?;
                    true
                }
                _ => false,
            })
        })?;
        Ok(vt)
    };
    Reader::each(buf, |field, wire, r| {
        match (field, wire) {
            (1, 2) => sample_types.push(value_type(r.bytes()?)?),
            (2, 2) => {
                let mut s = RawSample::default();
                Reader::each(r.bytes()?, |f, w, r| {
                    match f {
                        1 => r.repeated(w, &mut s.locations)?,
                        2 => r.repeated(w, &mut s.values)?,
                        3 if w == 2 => {
                            let (mut k, mut v, mut num) = (0, 0, None);
                            Reader::each(r.bytes()?, |f, w, r| {
                                Ok(match (f, w) {
                                    (1, 0) => {
                                        k = r.varint()?;
                                        true
                                    }
                                    (2, 0) => {
                                        v = r.varint()?;
                                        true
                                    }
                                    (3, 0) => {
                                        num = Some(r.varint()? as i64);
                                        true
                                    }
                                    _ => false,
                                })
                            })?;
                            s.labels.push((k, v, num));
                        }
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                samples.push(s);
            }
            (4, 2) => {
                let (mut id, mut addr, mut lines) = (0, 0, Vec::new());
                Reader::each(r.bytes()?, |f, w, r| {
                    Ok(match (f, w) {
                        (1, 0) => {
                            id = r.varint()?;
                            true
                        }
                        (3, 0) => {
                            addr = r.varint()?;
                            true
                        }
                        (4, 2) => {
                            let (mut func, mut line) = (0, 0i64);
                            Reader::each(r.bytes()?, |f, w, r| {
                                Ok(match (f, w) {
                                    (1, 0) => {
                                        func = r.varint()?;
                                        true
                                    }
                                    (2, 0) => {
                                        line = r.varint()? as i64;
                                        true
                                    }
                                    _ => false,
                                })
                            })?;
                            lines.push((func, line));
                            true
                        }
                        _ => false,
                    })
                })?;
                locations.push((id, addr, lines));
            }
            (5, 2) => {
                let (mut id, mut name, mut file) = (0, 0, 0);
                Reader::each(r.bytes()?, |f, w, r| {
                    Ok(match (f, w) {
                        (1, 0) => {
                            id = r.varint()?;
                            true
                        }
                        (2, 0) => {
                            name = r.varint()?;
                            true
                        }
                        (4, 0) => {
                            file = r.varint()?;
                            true
                        }
                        _ => false,
                    })
                })?;
                functions.insert(id, (name, file));
            }
            (6, 2) => strings.push(
                std::str::from_utf8(r.bytes()?)
                    .map_err(|_| DecodeError("string table entry is not UTF-8".into()))?,
            ),
            (10, 0) => duration = r.varint()? as i64,
            (11, 2) => period_type = value_type(r.bytes()?)?,
            (12, 0) => period = r.varint()? as i64,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if strings.first().is_some_and(|s| !s.is_empty()) {
        return err("string_table[0] is not empty");
    }
    let s = |i: u64| -> Result<String, DecodeError> {
        usize::try_from(i)
            .ok()
            .and_then(|i| strings.get(i))
            .map(|s| (*s).to_owned())
            .ok_or_else(|| DecodeError(format!("string index {i} out of range")))
    };
    let pair = |(a, b): (u64, u64)| -> Result<(String, String), DecodeError> { Ok((s(a)?, s(b)?)) };
    let mut out = PprofProfile {
        sample_types: sample_types
            .into_iter()
            .map(pair)
            .collect::<Result<_, _>>()?,
        period_type: pair(period_type)?,
        period,
        duration_nanos: duration,
        ..PprofProfile::default()
    };
    for (id, address, lines) in locations {
        let lines = lines
            .into_iter()
            .map(|(f, line)| {
                let (name, file) = functions.get(&f).copied().unwrap_or((0, 0));
                Ok(PprofLine {
                    function: s(name)?,
                    file: s(file)?,
                    line,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        out.locations.insert(id, PprofLocation { address, lines });
    }
    for raw in samples {
        let labels = raw
            .labels
            .into_iter()
            .map(|(k, v, num)| {
                let value = if v != 0 || num.is_none() {
                    s(v)?
                } else {
                    num.unwrap_or(0).to_string()
                };
                Ok((s(k)?, value))
            })
            .collect::<Result<_, DecodeError>>()?;
        out.samples.push(PprofSample {
            location_ids: raw.locations,
            values: raw.values.into_iter().map(|v| v as i64).collect(),
            labels,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::profile::{ProfileSample, ProfilerStats, SpawnSite};
    use taskline_core::{CodeFrame, CodeMapping};

    fn frame(function: &str, line: u32) -> CodeFrame {
        CodeFrame {
            function: function.into(),
            file: "src/x.rs".into(),
            line,
        }
    }

    #[test]
    fn round_trip_of_samples_labels_inlined_lines_and_period() {
        let sample = |stack: &[u64], task, site: Option<&str>, count| ProfileSample {
            stack: Arc::from(stack),
            task,
            site: site.map(|s| SpawnSite {
                name: s.into(),
                id: Some(3),
            }),
            worker: (task != 0).then_some(1),
            thread: "tokio-runtime-worker".into(),
            count,
        };
        let profile = Profile {
            frequency_hz: 100,
            period_ns: 10_000_000,
            start: SystemTime::UNIX_EPOCH + Duration::from_secs(5),
            duration: Duration::from_millis(1500),
            samples: vec![
                sample(&[0x1010, 0x2020], 7, Some("src/main.rs:10:5"), 30),
                sample(&[0x2020, 0x3030], 0, None, 2),
            ],
            stats: ProfilerStats::default(),
        };
        let mut symbols = Symbols::default();
        symbols
            .frames
            .insert(0x1010, vec![frame("inner", 3), frame("outer", 9)]);
        symbols.frames.insert(0x2020, vec![frame("caller", 20)]);
        symbols.mappings.push(CodeMapping {
            start: 0x1000,
            limit: 0x3000,
            offset: 0,
            path: "/bin/app".into(),
        });
        let bytes = encode(&profile, &symbols).expect("encode");
        assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzipped");
        let p = decode(&bytes).expect("decode");
        assert_eq!(
            p.sample_types,
            vec![
                ("samples".into(), "count".into()),
                ("cpu".into(), "nanoseconds".into())
            ]
        );
        assert_eq!(p.period_type, ("cpu".into(), "nanoseconds".into()));
        assert_eq!((p.period, p.duration_nanos), (10_000_000, 1_500_000_000));
        assert_eq!(p.samples.len(), 2);
        let s0 = &p.samples[0];
        assert_eq!(s0.values, vec![30, 300_000_000]);
        assert_eq!(p.function_names(s0), vec!["inner", "outer", "caller"]);
        assert_eq!(s0.label("spawn_site"), Some("src/main.rs:10:5"));
        assert_eq!(
            (s0.label("task"), s0.label("worker")),
            (Some("7"), Some("1"))
        );
        assert_eq!(s0.label("thread"), Some("tokio-runtime-worker"));
        let s1 = &p.samples[1];
        assert_eq!(p.function_names(s1), vec!["caller", "0x3030"]);
        assert_eq!((s1.label("spawn_site"), s1.label("task")), (None, None));
        let loc = p
            .locations
            .values()
            .find(|l| l.address == 0x1010)
            .expect("location");
        assert_eq!(loc.lines[0].line, 3);
        assert_eq!(loc.lines[0].file, "src/x.rs");
    }

    #[test]
    fn unpacked_fields_numeric_labels_and_garbage() {
        // A hand-made profile: strings ["", "k", "f"], one sample with
        // unpacked location ids 1, 2, a numeric label k=42, value 5.
        let mut pb = Pb::default();
        pb.msg(2, |s| {
            s.uint(1, 1);
            s.uint(1, 2);
            s.uint(2, 5);
            s.msg(3, |l| {
                l.uint(1, 1);
                l.uint(3, 42);
            });
        });
        pb.msg(4, |l| {
            l.uint(1, 1);
            l.msg(4, |ln| ln.uint(1, 1));
        });
        pb.msg(5, |f| {
            f.uint(1, 1);
            f.uint(2, 2);
        });
        pb.tag(15, 5); // an unknown fixed32 field is skipped
        pb.0.extend_from_slice(&[0, 0, 0, 0]);
        for s in ["", "k", "f"] {
            pb.bytes(6, s.as_bytes());
        }
        let p = decode(&pb.0).expect("decode");
        assert_eq!(p.samples[0].location_ids, vec![1, 2]);
        assert_eq!(p.samples[0].values, vec![5]);
        assert_eq!(p.samples[0].label("k"), Some("42"));
        assert_eq!(p.function_names(&p.samples[0]), vec!["f", "location 2"]);
        assert!(decode(&pb.0[..pb.0.len() - 1]).is_err(), "truncated");
        assert!(decode(&[0x12, 0x7f]).is_err(), "length past the end");
        let mut bad = Pb::default();
        bad.bytes(6, b"x");
        assert!(decode(&bad.0).is_err(), "string_table[0] must be empty");
    }
}
