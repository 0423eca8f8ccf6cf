//! CPU samples in the trace: a profiler's [`CpuSamples`] written as
//! Perfetto `PerfSample` packets on the process sequence, their stacks
//! interned (`function_names`, `source_paths`, `mapping_paths`,
//! `mappings`, `frames`, `callstacks`), and read back.
//!
//! Why `PerfSample` on the process sequence (and not Chrome's
//! `StreamingProfilePacket`): the trace processor files a `PerfSample`
//! under the `pid`/`tid` the packet names, with the packet's own
//! (absolute, nanosecond) timestamp, so it lands on the thread whose track
//! descriptor names the same OS tid; a `StreamingProfilePacket` takes its
//! thread from a legacy per-sequence `ThreadDescriptor` packet and its
//! times in microsecond deltas on that descriptor's clock. The trace
//! processor makes one perf session per sequence, so all samples share the
//! process sequence: one session, one "Perf Callstacks" track per thread.
//! `docs/trace-format.md` has the details.
//!
//! Interning is incremental: a sample's packet carries the entries its
//! stack needs that no earlier sample interned. The writer's tables grow
//! with the distinct stacks written (not with the samples).

use std::collections::HashMap;
use std::sync::Arc;

use taskline_core::{CodeFrame, CodeMapping, CpuSample, CpuSamples};

use crate::error::{TraceError, TraceErrorKind as K};
use crate::reader_common::entry;
use crate::schema::{self, callstack as cs, interned, packet};
use crate::wire::{Reader, begin_nested, end_nested, put_bytes, put_uint};
use crate::wire::{as_bytes, as_str, as_varint};

/// New interning entries of one packet, per `InternedData` field (written
/// in field-number order).
#[derive(Default)]
struct NewEntries {
    functions: Vec<u8>,
    frames: Vec<u8>,
    callstacks: Vec<u8>,
    mapping_paths: Vec<u8>,
    source_paths: Vec<u8>,
    mappings: Vec<u8>,
}

impl NewEntries {
    fn is_empty(&self) -> bool {
        self.functions.is_empty()
            && self.frames.is_empty()
            && self.callstacks.is_empty()
            && self.mapping_paths.is_empty()
            && self.source_paths.is_empty()
            && self.mappings.is_empty()
    }

    fn put(&self, out: &mut Vec<u8>) {
        let m = begin_nested(out, packet::INTERNED_DATA);
        for part in [
            &self.functions,
            &self.frames,
            &self.callstacks,
            &self.mapping_paths,
            &self.source_paths,
            &self.mappings,
        ] {
            out.extend_from_slice(part);
        }
        end_nested(out, m);
    }
}

/// One string table of the interned data (iids from 1).
#[derive(Default)]
struct Strings(HashMap<Arc<str>, u64>);

impl Strings {
    fn iid(&mut self, s: &Arc<str>, field: u32, out: &mut Vec<u8>) -> u64 {
        if let Some(&iid) = self.0.get(s) {
            return iid;
        }
        let iid = self.0.len() as u64 + 1;
        self.0.insert(Arc::clone(s), iid);
        let m = begin_nested(out, field);
        put_uint(out, interned::IID, iid);
        put_bytes(out, interned::VALUE, s.as_bytes());
        end_nested(out, m);
        iid
    }
}

/// The encoder's interning state for CPU samples (process sequence).
#[derive(Default)]
pub(crate) struct SampleWriter {
    functions: Strings,
    sources: Strings,
    paths: Strings,
    mappings: HashMap<(u64, u64, u64, Arc<str>), u64>,
    /// (address, inline depth: 0 the innermost function) -> frame iid.
    frames: HashMap<(u64, usize), u64>,
    callstacks: HashMap<Vec<u64>, u64>,
}

impl SampleWriter {
    /// Appends one packet per sample of `samples` to `out` (samples with an
    /// empty or unknown stack are skipped); returns how many were written.
    pub(crate) fn write(&mut self, out: &mut Vec<u8>, pid: u32, samples: &CpuSamples) -> u64 {
        let mut stack_iids: Vec<Option<u64>> = vec![None; samples.stacks.len()];
        let mut written = 0;
        for s in &samples.samples {
            let Some(slot) = stack_iids.get_mut(s.stack as usize) else {
                continue;
            };
            let addrs = &samples.stacks[s.stack as usize];
            if addrs.is_empty() {
                continue;
            }
            let mut new = NewEntries::default();
            let iid = match *slot {
                Some(iid) => iid,
                None => {
                    let iid = self.callstack(addrs, samples, &mut new);
                    *slot = Some(iid);
                    iid
                }
            };
            let p = begin_nested(out, schema::TRACE_PACKET);
            put_uint(out, packet::TIMESTAMP, s.ts_ns);
            put_uint(out, packet::TRUSTED_PACKET_SEQUENCE_ID, schema::SEQUENCE_ID);
            if !new.is_empty() {
                new.put(out);
            }
            let ps = begin_nested(out, packet::PERF_SAMPLE);
            put_uint(out, cs::SAMPLE_PID, u64::from(pid));
            put_uint(out, cs::SAMPLE_TID, u64::from(s.tid));
            put_uint(out, cs::SAMPLE_CALLSTACK, iid);
            put_uint(out, cs::SAMPLE_CPU_MODE, cs::MODE_USER);
            end_nested(out, ps);
            end_nested(out, p);
            written += 1;
        }
        written
    }

    /// The callstack iid of `addrs` (innermost first), interning what is new.
    fn callstack(&mut self, addrs: &[u64], samples: &CpuSamples, new: &mut NewEntries) -> u64 {
        // Perfetto lists a callstack's frames from the root; an address
        // with inlined functions is one frame per function, outermost first.
        let mut ids = Vec::with_capacity(addrs.len());
        for &addr in addrs.iter().rev() {
            match samples.symbols.get(&addr).filter(|f| !f.is_empty()) {
                Some(fs) => {
                    for (depth, f) in fs.iter().enumerate().rev() {
                        ids.push(self.frame(addr, depth, Some(f), samples, new));
                    }
                }
                None => ids.push(self.frame(addr, 0, None, samples, new)),
            }
        }
        if let Some(&iid) = self.callstacks.get(&ids) {
            return iid;
        }
        let iid = self.callstacks.len() as u64 + 1;
        let o = &mut new.callstacks;
        let m = begin_nested(o, cs::CALLSTACKS);
        put_uint(o, cs::IID, iid);
        for &f in &ids {
            put_uint(o, cs::CALLSTACK_FRAMES, f);
        }
        end_nested(o, m);
        self.callstacks.insert(ids, iid);
        iid
    }

    fn frame(
        &mut self,
        addr: u64,
        depth: usize,
        f: Option<&CodeFrame>,
        samples: &CpuSamples,
        new: &mut NewEntries,
    ) -> u64 {
        if let Some(&iid) = self.frames.get(&(addr, depth)) {
            return iid;
        }
        let mapping = samples
            .mapping_of(addr)
            .map(|i| &samples.mappings[i])
            .map(|m| (self.mapping(m, new), addr - m.start + m.offset));
        let name: Arc<str> = match f {
            Some(f) => Arc::clone(&f.function),
            None => Arc::from(format!("{addr:#x}")),
        };
        let name_iid = self
            .functions
            .iid(&name, cs::FUNCTION_NAMES, &mut new.functions);
        let source = f.filter(|f| !f.file.is_empty()).map(|f| {
            self.sources
                .iid(&f.file, cs::SOURCE_PATHS, &mut new.source_paths)
        });
        let iid = self.frames.len() as u64 + 1;
        self.frames.insert((addr, depth), iid);
        let o = &mut new.frames;
        let m = begin_nested(o, cs::FRAMES);
        put_uint(o, cs::IID, iid);
        put_uint(o, cs::FRAME_FUNCTION, name_iid);
        if let Some((mapping, rel_pc)) = mapping {
            put_uint(o, cs::FRAME_MAPPING, mapping);
            put_uint(o, cs::FRAME_REL_PC, rel_pc);
        }
        if let Some(source) = source {
            put_uint(o, cs::FRAME_SOURCE, source);
        }
        if let Some(line) = f.map(|f| f.line).filter(|&l| l > 0) {
            put_uint(o, cs::FRAME_LINE, u64::from(line));
        }
        end_nested(o, m);
        iid
    }

    fn mapping(&mut self, m: &CodeMapping, new: &mut NewEntries) -> u64 {
        let key = (m.start, m.limit, m.offset, Arc::clone(&m.path));
        if let Some(&iid) = self.mappings.get(&key) {
            return iid;
        }
        let path = self
            .paths
            .iid(&m.path, cs::MAPPING_PATHS, &mut new.mapping_paths);
        let iid = self.mappings.len() as u64 + 1;
        self.mappings.insert(key, iid);
        let o = &mut new.mappings;
        let e = begin_nested(o, cs::MAPPINGS);
        put_uint(o, cs::IID, iid);
        put_uint(o, cs::MAPPING_START, m.start);
        put_uint(o, cs::MAPPING_END, m.limit);
        put_uint(o, cs::MAPPING_PATH, path);
        put_uint(o, cs::MAPPING_EXACT_OFFSET, m.offset);
        end_nested(o, e);
        iid
    }
}

// ---------------------------------------------------------------- reading

/// An interned frame as read: function name iid, source path iid, line.
#[derive(Clone, Copy)]
struct RawFrame {
    function: u64,
    source: Option<u64>,
    line: u32,
}

/// The reader's CPU sample tables (process sequence): interned entries,
/// the samples and their resolved stacks.
#[derive(Default)]
pub(crate) struct SampleReader {
    functions: HashMap<u64, Arc<str>>,
    sources: HashMap<u64, Arc<str>>,
    frames: HashMap<u64, RawFrame>,
    callstacks: HashMap<u64, Vec<u64>>,
    /// Callstack iid -> index in `stacks`.
    resolved: HashMap<u64, u32>,
    pub(crate) samples: Vec<CpuSample>,
    /// Frames of each stack, innermost first.
    pub(crate) stacks: Vec<Vec<CodeFrame>>,
}

fn err<T>(at: usize, kind: K) -> Result<T, TraceError> {
    Err(TraceError::new(at, kind))
}

/// Inserts a new interned entry; an iid defined twice is malformed (the
/// process sequence clears its state once, in the header).
fn define<V>(map: &mut HashMap<u64, V>, iid: u64, v: V, at: usize) -> Result<(), TraceError> {
    if iid == 0 || map.insert(iid, v).is_some() {
        return err(
            at,
            K::Malformed("CPU sample table entry with iid 0 or defined twice"),
        );
    }
    Ok(())
}

impl SampleReader {
    /// One `InternedData` field of the process sequence, if it is a
    /// callstack table (others are not this module's).
    pub(crate) fn interned(
        &mut self,
        field: u32,
        body: &[u8],
        off: usize,
    ) -> Result<(), TraceError> {
        match field {
            cs::FUNCTION_NAMES | cs::SOURCE_PATHS => {
                let (iid, v, at) = entry(body, off)?;
                let s: Arc<str> = Arc::from(as_str(v, at, "interned function or source name")?);
                let map = if field == cs::FUNCTION_NAMES {
                    &mut self.functions
                } else {
                    &mut self.sources
                };
                define(map, iid, s, off)
            }
            cs::FRAMES => {
                let (mut iid, mut function, mut source, mut line) = (0, None, None, 0);
                let mut r = Reader::new(body, off);
                while let Some((f, v)) = r.next_field()? {
                    let at = r.offset();
                    match f {
                        cs::IID => iid = as_varint(v, at, "Frame.iid")?,
                        cs::FRAME_FUNCTION => {
                            function = Some(as_varint(v, at, "Frame.function_name_id")?)
                        }
                        cs::FRAME_SOURCE => {
                            source = Some(as_varint(v, at, "Frame.source_path_iid")?)
                        }
                        cs::FRAME_LINE => {
                            line = u32::try_from(as_varint(v, at, "Frame.line_number")?)
                                .map_err(|_| TraceError::new(at, K::Malformed("line too large")))?
                        }
                        _ => {}
                    }
                }
                let function = function
                    .ok_or_else(|| TraceError::new(off, K::Malformed("frame without function")))?;
                let frame = RawFrame {
                    function,
                    source,
                    line,
                };
                define(&mut self.frames, iid, frame, off)
            }
            cs::CALLSTACKS => {
                let (mut iid, mut ids) = (0, Vec::new());
                let mut r = Reader::new(body, off);
                while let Some((f, v)) = r.next_field()? {
                    let at = r.offset();
                    match f {
                        cs::IID => iid = as_varint(v, at, "Callstack.iid")?,
                        cs::CALLSTACK_FRAMES => ids.push(as_varint(v, at, "Callstack.frame_ids")?),
                        _ => {}
                    }
                }
                define(&mut self.callstacks, iid, ids, off)
            }
            // Mappings and their paths name no function: not read.
            _ => Ok(()),
        }
    }

    /// A `PerfSample` at `ts` (absolute, the process sequence's clock).
    pub(crate) fn sample(&mut self, body: &[u8], off: usize, ts: u64) -> Result<(), TraceError> {
        let (mut tid, mut callstack) = (None, None);
        let mut r = Reader::new(body, off);
        while let Some((f, v)) = r.next_field()? {
            let at = r.offset();
            match f {
                cs::SAMPLE_TID => {
                    tid = Some(
                        u32::try_from(as_varint(v, at, "PerfSample.tid")?)
                            .map_err(|_| TraceError::new(at, K::Malformed("tid too large")))?,
                    )
                }
                cs::SAMPLE_CALLSTACK => {
                    callstack = Some(as_varint(v, at, "PerfSample.callstack_iid")?)
                }
                _ => {}
            }
        }
        let (Some(tid), Some(iid)) = (tid, callstack) else {
            return err(off, K::Malformed("CPU sample without tid or callstack"));
        };
        let stack = self.resolve(iid, off)?;
        self.samples.push(CpuSample {
            ts_ns: ts,
            tid,
            stack,
        });
        Ok(())
    }

    /// The index in `stacks` of callstack `iid`, resolved on first use.
    fn resolve(&mut self, iid: u64, off: usize) -> Result<u32, TraceError> {
        if let Some(&i) = self.resolved.get(&iid) {
            return Ok(i);
        }
        let unknown = |table, iid| TraceError::new(off, K::UnknownIid { table, iid });
        let ids = self
            .callstacks
            .get(&iid)
            .ok_or_else(|| unknown("callstack", iid))?;
        let mut frames = Vec::with_capacity(ids.len());
        // Stored root first; returned innermost first.
        for &id in ids.iter().rev() {
            let f = self.frames.get(&id).ok_or_else(|| unknown("frame", id))?;
            let function = self
                .functions
                .get(&f.function)
                .ok_or_else(|| unknown("function name", f.function))?;
            let file = match f.source {
                Some(s) => Arc::clone(
                    self.sources
                        .get(&s)
                        .ok_or_else(|| unknown("source path", s))?,
                ),
                None => Arc::from(""),
            };
            frames.push(CodeFrame {
                function: Arc::clone(function),
                file,
                line: f.line,
            });
        }
        let i = u32::try_from(self.stacks.len())
            .map_err(|_| TraceError::new(off, K::Malformed("too many stacks")))?;
        self.stacks.push(frames);
        self.resolved.insert(iid, i);
        Ok(i)
    }
}

/// Reads the callstack tables out of a process-sequence `InternedData`.
pub(crate) fn read_interned(
    samples: &mut SampleReader,
    body: &[u8],
    off: usize,
) -> Result<(), TraceError> {
    let mut r = Reader::new(body, off);
    while let Some((f, v)) = r.next_field()? {
        if matches!(
            f,
            cs::FUNCTION_NAMES | cs::SOURCE_PATHS | cs::FRAMES | cs::CALLSTACKS
        ) {
            let (b, o) = as_bytes(v, r.offset(), "InternedData callstack table")?;
            samples.interned(f, b, o)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, line: u32) -> CodeFrame {
        CodeFrame {
            function: Arc::from(function),
            file: Arc::from("src/lib.rs"),
            line,
        }
    }

    #[test]
    fn stacks_round_trip_with_inlined_frames_and_unknown_addresses() {
        let mut symbols = HashMap::new();
        // 0x1010 holds `inner` inlined into `outer`; 0x1020 is `main`; 0x9000 is unknown.
        symbols.insert(0x1010, vec![frame("inner", 3), frame("outer", 9)]);
        symbols.insert(0x1020, vec![frame("main", 20)]);
        let samples = CpuSamples {
            samples: vec![
                CpuSample {
                    ts_ns: 100,
                    tid: 7,
                    stack: 0,
                },
                CpuSample {
                    ts_ns: 200,
                    tid: 8,
                    stack: 1,
                },
                CpuSample {
                    ts_ns: 300,
                    tid: 7,
                    stack: 0,
                },
            ],
            stacks: vec![Arc::from(&[0x1010, 0x1020][..]), Arc::from(&[0x9000][..])],
            symbols,
            mappings: vec![CodeMapping {
                start: 0x1000,
                limit: 0x2000,
                offset: 0x400,
                path: Arc::from("/bin/app"),
            }],
            dropped: 0,
        };
        let mut w = SampleWriter::default();
        let mut out = Vec::new();
        assert_eq!(w.write(&mut out, 42, &samples), 3);
        let first_len = out.len();
        // A second batch with the same stack interns nothing new.
        assert_eq!(w.write(&mut out, 42, &samples), 3);
        assert!(out.len() - first_len < first_len, "interned once");
        let mut r = SampleReader::default();
        crate::reader::for_each_packet(&out, |body, off| {
            let mut p = Reader::new(body, off);
            let mut ts = 0;
            while let Some((f, v)) = p.next_field()? {
                let at = p.offset();
                match f {
                    packet::TIMESTAMP => ts = as_varint(v, at, "ts")?,
                    packet::INTERNED_DATA => {
                        let (b, o) = as_bytes(v, at, "interned")?;
                        read_interned(&mut r, b, o)?;
                    }
                    packet::PERF_SAMPLE => {
                        let (b, o) = as_bytes(v, at, "sample")?;
                        r.sample(b, o, ts)?;
                    }
                    _ => {}
                }
            }
            Ok(true)
        })
        .unwrap();
        assert_eq!(r.samples.len(), 6);
        assert_eq!(
            r.samples[..3]
                .iter()
                .map(|s| (s.ts_ns, s.tid))
                .collect::<Vec<_>>(),
            vec![(100, 7), (200, 8), (300, 7)]
        );
        let names = |i: u32| -> Vec<String> {
            r.stacks[i as usize]
                .iter()
                .map(|f| f.function.to_string())
                .collect()
        };
        assert_eq!(names(r.samples[0].stack), ["inner", "outer", "main"]);
        assert_eq!(names(r.samples[1].stack), ["0x9000"]);
        assert_eq!(r.samples[0].stack, r.samples[5].stack);
        assert_eq!(r.stacks[0][0], frame("inner", 3));
    }

    #[test]
    fn unknown_and_doubly_defined_iids_are_errors() {
        let mut r = SampleReader::default();
        let mut body = Vec::new();
        put_uint(&mut body, cs::SAMPLE_TID, 1);
        put_uint(&mut body, cs::SAMPLE_CALLSTACK, 5);
        let e = r.sample(&body, 0, 0).unwrap_err();
        assert!(
            matches!(
                e.kind,
                K::UnknownIid {
                    table: "callstack",
                    iid: 5
                }
            ),
            "{e}"
        );
        let mut cs_body = Vec::new();
        put_uint(&mut cs_body, cs::IID, 5);
        put_uint(&mut cs_body, cs::CALLSTACK_FRAMES, 9);
        r.interned(cs::CALLSTACKS, &cs_body, 0).unwrap();
        assert!(r.interned(cs::CALLSTACKS, &cs_body, 0).is_err());
        let e = r.sample(&body, 0, 0).unwrap_err();
        assert!(
            matches!(
                e.kind,
                K::UnknownIid {
                    table: "frame",
                    iid: 9
                }
            ),
            "{e}"
        );
    }
}
