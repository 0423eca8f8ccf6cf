//! Symbolization of a profile's addresses in the profiled process: function
//! names (demangled), source file and line, inlined functions (through
//! `blazesym`), and the executable mappings they fall in (from
//! `/proc/self/maps`).

use std::collections::HashMap;

use crate::profile::Profile;

/// One source-level frame at an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub function: String,
    pub file: String,
    pub line: u32,
}

/// A mapped file region holding code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub start: u64,
    pub limit: u64,
    pub offset: u64,
    pub file: String,
}

/// What the pprof writer needs to name addresses.
#[derive(Debug, Default)]
pub(crate) struct Symbols {
    /// Frames per address, innermost (most inlined) first; absent or empty
    /// when unknown.
    pub frames: HashMap<u64, Vec<Frame>>,
    pub mappings: Vec<Mapping>,
}

impl Symbols {
    /// The index in `mappings` of the one holding `addr`.
    pub fn mapping_of(&self, addr: u64) -> Option<usize> {
        let i = self.mappings.partition_point(|m| m.start <= addr);
        (i > 0 && addr < self.mappings[i - 1].limit).then(|| i - 1)
    }
}

/// A symbolizer that keeps the parsed ELF and DWARF of every file it read
/// (memory in proportion to their debug info), so that repeated profiles
/// (the collector's) do not parse the executable again. Not `Send`: one per
/// thread that symbolizes repeatedly.
#[derive(Default)]
pub(crate) struct SymbolCache {
    #[cfg(target_os = "linux")]
    symbolizer: Option<blazesym::symbolize::Symbolizer>,
}

/// Symbolizes every address of `profile` (with a fresh cache).
pub(crate) fn symbolize(profile: &Profile) -> Symbols {
    symbolize_with(&mut SymbolCache::default(), profile)
}

/// Symbolizes every address of `profile` through `cache`.
pub(crate) fn symbolize_with(cache: &mut SymbolCache, profile: &Profile) -> Symbols {
    let mut addrs: Vec<u64> = profile
        .samples
        .iter()
        .flat_map(|s| s.stack.iter().copied())
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    Symbols {
        frames: frames(cache, &addrs),
        mappings: mappings(),
    }
}

/// The source frames of `addrs` (sorted, distinct) and the executable
/// mappings, as the trace writer takes them ([`taskline_core::CpuSamples`]).
pub(crate) fn code_frames(
    addrs: &[u64],
) -> (
    HashMap<u64, Vec<taskline_core::CodeFrame>>,
    Vec<taskline_core::CodeMapping>,
) {
    use std::sync::Arc;
    use taskline_core::{CodeFrame, CodeMapping};
    let mut names: std::collections::HashSet<Arc<str>> = Default::default();
    let mut intern = |s: String| -> Arc<str> {
        if let Some(a) = names.get(s.as_str()) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        names.insert(Arc::clone(&a));
        a
    };
    let symbols = frames(&mut SymbolCache::default(), addrs)
        .into_iter()
        .map(|(addr, fs)| {
            let fs = fs
                .into_iter()
                .map(|f| CodeFrame {
                    function: intern(f.function),
                    file: intern(f.file),
                    line: f.line,
                })
                .collect();
            (addr, fs)
        })
        .collect();
    let maps = mappings()
        .into_iter()
        .map(|m| CodeMapping {
            start: m.start,
            limit: m.limit,
            offset: m.offset,
            path: Arc::from(m.file),
        })
        .collect();
    (symbols, maps)
}

#[cfg(target_os = "linux")]
fn frames(cache: &mut SymbolCache, addrs: &[u64]) -> HashMap<u64, Vec<Frame>> {
    use blazesym::symbolize::source::{Process, Source};
    use blazesym::symbolize::{CodeInfo, Input, Symbolized, Symbolizer};

    let mut out = HashMap::new();
    if addrs.is_empty() {
        return out;
    }
    let symbolizer = cache.symbolizer.get_or_insert_with(|| {
        Symbolizer::builder()
            .enable_code_info(true)
            .enable_inlined_fns(true)
            .enable_demangling(true)
            .build()
    });
    let mut process = Process::new(blazesym::Pid::Slf);
    // Symbolic paths from /proc/self/maps: /proc/self/map_files may need
    // privileges in some containers.
    process.map_files = false;
    process.perf_map = false;
    let Ok(symbolized) = symbolizer.symbolize(&Source::Process(process), Input::AbsAddr(addrs))
    else {
        return out;
    };
    let place = |info: Option<&CodeInfo<'_>>| {
        info.map_or((String::new(), 0), |c| {
            (c.to_path().display().to_string(), c.line.unwrap_or(0))
        })
    };
    for (&addr, sym) in addrs.iter().zip(symbolized) {
        let Symbolized::Sym(sym) = sym else { continue };
        // blazesym lists the outer function first, each entry with the
        // location inside that function; pprof wants the innermost first.
        let mut frames = Vec::with_capacity(1 + sym.inlined.len());
        let (file, line) = place(sym.code_info.as_deref());
        frames.push(Frame {
            function: sym.name.to_string(),
            file,
            line,
        });
        for inl in sym.inlined.iter() {
            let (file, line) = place(inl.code_info.as_ref());
            frames.push(Frame {
                function: inl.name.to_string(),
                file,
                line,
            });
        }
        frames.reverse();
        out.insert(addr, frames);
    }
    out
}

#[cfg(not(target_os = "linux"))]
fn frames(_cache: &mut SymbolCache, _addrs: &[u64]) -> HashMap<u64, Vec<Frame>> {
    HashMap::new()
}

/// The executable file mappings of this process, by start address.
fn mappings() -> Vec<Mapping> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let mut out: Vec<Mapping> = maps.lines().filter_map(parse_maps_line).collect();
    out.sort_by_key(|m| m.start);
    out
}

/// `start-limit perms offset dev inode path` for an executable mapping.
fn parse_maps_line(line: &str) -> Option<Mapping> {
    let mut parts = line.split_ascii_whitespace();
    let range = parts.next()?;
    let perms = parts.next()?;
    let offset = parts.next()?;
    let _dev = parts.next()?;
    let _inode = parts.next()?;
    let file = parts.collect::<Vec<_>>().join(" ");
    if !perms.contains('x') {
        return None;
    }
    let (start, limit) = range.split_once('-')?;
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        limit: u64::from_str_radix(limit, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let m =
            parse_maps_line("55d0c6a00000-55d0c6b00000 r-xp 00001000 08:01 123 /usr/bin/my app")
                .expect("executable");
        assert_eq!(
            m,
            Mapping {
                start: 0x55d0_c6a0_0000,
                limit: 0x55d0_c6b0_0000,
                offset: 0x1000,
                file: "/usr/bin/my app".into()
            }
        );
        assert_eq!(parse_maps_line("7f00-7f10 rw-p 00000000 00:00 0"), None);
        let symbols = Symbols {
            frames: HashMap::new(),
            mappings: vec![m.clone()],
        };
        assert_eq!(symbols.mapping_of(0x55d0_c6a0_0010), Some(0));
        assert_eq!(symbols.mapping_of(0x55d0_c6b0_0000), None);
        assert_eq!(symbols.mapping_of(0x10), None);
    }
}
