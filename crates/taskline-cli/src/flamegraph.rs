//! `taskline flamegraph PROFILE [-o out.svg]`: a flame graph of a pprof CPU
//! profile, drawn by `taskline_profile::flamegraph`.

use std::io::Write;
use std::path::Path;

use taskline_profile::flamegraph::{self, FlameOptions};

use crate::cli::FlamegraphArgs;
use crate::error::CliError;

/// Draw the flame graph.
pub fn run(args: &FlamegraphArgs) -> Result<(), CliError> {
    let bytes = std::fs::read(&args.profile)
        .map_err(|e| CliError::new(format!("cannot read {}: {e}", args.profile.display())))?;
    let profile = taskline_profile::pprof::decode(&bytes)
        .map_err(|e| CliError::new(format!("{}: {e}", args.profile.display())))?;
    let tag_focus = match &args.tagfocus {
        None => None,
        Some(spec) => {
            let (k, v) = spec
                .split_once('=')
                .ok_or_else(|| CliError::new(format!("--tagfocus {spec:?}: expected KEY=VALUE")))?;
            Some((k.to_owned(), v.to_owned()))
        }
    };
    let name = args
        .profile
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let opts = FlameOptions {
        title: match &args.tagfocus {
            Some(f) => format!("{name} ({f})"),
            None => name.clone(),
        },
        width: args.width,
        value: args.value.clone(),
        tag_focus,
        group_by: args.group_by.clone(),
    };
    let err = |e: flamegraph::FlameError| CliError::new(format!("{}: {e}", args.profile.display()));
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = name.strip_suffix(".gz").unwrap_or(&name);
        let stem = stem.strip_suffix(".pb").unwrap_or(stem);
        let ext = if args.folded { "folded" } else { "svg" };
        args.profile.with_file_name(format!("{stem}.{ext}"))
    });
    let body = if args.folded {
        let mut text = String::new();
        for (stack, value) in flamegraph::folded(&profile, &opts).map_err(err)? {
            text.push_str(&format!("{stack} {value}\n"));
        }
        text
    } else {
        flamegraph::svg(&profile, &opts).map_err(err)?
    };
    write(&out, body.as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}

fn write(out: &Path, body: &[u8]) -> Result<(), CliError> {
    taskline_trace::write_atomically(out, |w| w.write_all(body))
        .map_err(|e| CliError::new(format!("cannot write {}: {e}", out.display())))
}
