//! The minimal, deny-by-default WASI set a Rust `std` guest imports even when it does nothing.
//!
//! Nothing here reaches the outside world: the environment and arguments are empty, stdin is at
//! end of file, stdout and stderr go (bounded) into the decision log, `exit` ends the decision,
//! clocks read the request's `now` and random numbers come from a per-decision seed. Any other
//! interface or function (filesystem, sockets, HTTP, ...) is simply not in the linker, so a
//! module that imports one is rejected at load with the import's name.
//!
//! The functions are defined one by one rather than through `wasmtime-wasi`: a module only pays,
//! per instantiation, for what it imports, and every definition below is stateless.

use super::sandbox::{LimitHit, SandboxState};
use wasmtime::component::{
    ComponentType, Lift, Linker, LinkerInstance, Lower, Resource, ResourceType,
};
use wasmtime::{Result, StoreContextMut};

/// The WASI 0.2 release the definitions are registered under; wasmtime's linker also serves
/// them to guests built against any other `0.2.x` release.
pub const WASI_VERSION: &str = "0.2.6";

/// Interfaces a policy may import (unversioned), besides `tollgate:policy/host`.
pub const ALLOWED_INTERFACES: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
];

/// Largest random buffer a guest may ask for at once.
const MAX_RANDOM_BYTES: u64 = 1 << 16;
/// What `check-write` allows per write.
const WRITE_BUDGET: u64 = 4096;

const STDOUT: u32 = 1;
const STDERR: u32 = 2;

pub struct InputStream;
pub struct OutputStream;
pub struct IoError;
pub struct Pollable;
pub struct TerminalInput;
pub struct TerminalOutput;

#[derive(ComponentType, Lift, Lower)]
#[component(variant)]
enum StreamError {
    #[component(name = "last-operation-failed")]
    LastOperationFailed(Resource<IoError>),
    #[component(name = "closed")]
    Closed,
}

#[derive(ComponentType, Lift, Lower, Clone, Copy)]
#[component(record)]
struct Datetime {
    seconds: u64,
    nanoseconds: u32,
}

type Ctx<'a> = StoreContextMut<'a, SandboxState>;
type Streamed<T> = Result<(std::result::Result<T, StreamError>,)>;

fn instance<'a>(
    linker: &'a mut Linker<SandboxState>,
    name: &str,
) -> Result<LinkerInstance<'a, SandboxState>> {
    linker.instance(&format!("{name}@{WASI_VERSION}"))
}

fn resource<R: 'static>(inst: &mut LinkerInstance<'_, SandboxState>, name: &str) -> Result<()> {
    inst.resource(name, ResourceType::host::<R>(), |_, _| Ok(()))
}

/// Adds the minimal WASI set to `linker`.
pub fn add_to_linker(linker: &mut Linker<SandboxState>) -> Result<()> {
    io(linker)?;
    cli(linker)?;
    random(linker)?;
    clocks(linker)
}

fn io(linker: &mut Linker<SandboxState>) -> Result<()> {
    let mut error = instance(linker, "wasi:io/error")?;
    resource::<IoError>(&mut error, "error")?;
    error.func_wrap(
        "[method]error.to-debug-string",
        |_: Ctx, (_,): (Resource<IoError>,)| Ok(("stream closed".to_owned(),)),
    )?;

    let mut poll = instance(linker, "wasi:io/poll")?;
    resource::<Pollable>(&mut poll, "pollable")?;
    // Every pollable is ready at once: nothing in the sandbox ever waits.
    poll.func_wrap(
        "[method]pollable.ready",
        |_: Ctx, (_,): (Resource<Pollable>,)| Ok((true,)),
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |_: Ctx, (_,): (Resource<Pollable>,)| Ok(()),
    )?;
    poll.func_wrap("poll", |_: Ctx, (list,): (Vec<Resource<Pollable>>,)| {
        Ok(((0..list.len() as u32).collect::<Vec<u32>>(),))
    })?;

    let mut streams = instance(linker, "wasi:io/streams")?;
    resource::<InputStream>(&mut streams, "input-stream")?;
    resource::<OutputStream>(&mut streams, "output-stream")?;
    input_stream(&mut streams)?;
    output_stream(&mut streams)
}

fn input_stream(streams: &mut LinkerInstance<'_, SandboxState>) -> Result<()> {
    // Stdin is empty: every read is end of file.
    for name in ["read", "blocking-read"] {
        streams.func_wrap(
            &format!("[method]input-stream.{name}"),
            |_: Ctx, (_, _): (Resource<InputStream>, u64)| -> Streamed<Vec<u8>> {
                Ok((Err(StreamError::Closed),))
            },
        )?;
    }
    for name in ["skip", "blocking-skip"] {
        streams.func_wrap(
            &format!("[method]input-stream.{name}"),
            |_: Ctx, (_, _): (Resource<InputStream>, u64)| -> Streamed<u64> {
                Ok((Err(StreamError::Closed),))
            },
        )?;
    }
    streams.func_wrap(
        "[method]input-stream.subscribe",
        |_: Ctx, (_,): (Resource<InputStream>,)| Ok((Resource::<Pollable>::new_own(0),)),
    )
}

fn capture(mut cx: Ctx<'_>, stream: &Resource<OutputStream>, bytes: &[u8]) {
    let name = if stream.rep() == STDERR {
        "stderr"
    } else {
        "stdout"
    };
    cx.data_mut().log(name, &String::from_utf8_lossy(bytes));
}

fn output_stream(streams: &mut LinkerInstance<'_, SandboxState>) -> Result<()> {
    streams.func_wrap(
        "[method]output-stream.check-write",
        |_: Ctx, (_,): (Resource<OutputStream>,)| -> Streamed<u64> { Ok((Ok(WRITE_BUDGET),)) },
    )?;
    for name in ["write", "blocking-write-and-flush"] {
        streams.func_wrap(
            &format!("[method]output-stream.{name}"),
            |cx: Ctx, (stream, bytes): (Resource<OutputStream>, Vec<u8>)| -> Streamed<()> {
                capture(cx, &stream, &bytes);
                Ok((Ok(()),))
            },
        )?;
    }
    for name in ["flush", "blocking-flush"] {
        streams.func_wrap(
            &format!("[method]output-stream.{name}"),
            |_: Ctx, (_,): (Resource<OutputStream>,)| -> Streamed<()> { Ok((Ok(()),)) },
        )?;
    }
    for name in ["write-zeroes", "blocking-write-zeroes-and-flush"] {
        streams.func_wrap(
            &format!("[method]output-stream.{name}"),
            |_: Ctx, (_, _): (Resource<OutputStream>, u64)| -> Streamed<()> { Ok((Ok(()),)) },
        )?;
    }
    for name in ["splice", "blocking-splice"] {
        streams.func_wrap(
            &format!("[method]output-stream.{name}"),
            |_: Ctx,
             (_, _, _): (Resource<OutputStream>, Resource<InputStream>, u64)|
             -> Streamed<u64> { Ok((Err(StreamError::Closed),)) },
        )?;
    }
    streams.func_wrap(
        "[method]output-stream.subscribe",
        |_: Ctx, (_,): (Resource<OutputStream>,)| Ok((Resource::<Pollable>::new_own(0),)),
    )
}

fn cli(linker: &mut Linker<SandboxState>) -> Result<()> {
    let mut env = instance(linker, "wasi:cli/environment")?;
    env.func_wrap("get-environment", |_: Ctx, ()| {
        Ok((Vec::<(String, String)>::new(),))
    })?;
    env.func_wrap("get-arguments", |_: Ctx, ()| Ok((Vec::<String>::new(),)))?;
    env.func_wrap("initial-cwd", |_: Ctx, ()| Ok((None::<String>,)))?;

    let mut exit = instance(linker, "wasi:cli/exit")?;
    exit.func_wrap(
        "exit",
        |mut cx: Ctx, (_,): (std::result::Result<(), ()>,)| -> Result<()> {
            cx.data_mut().limit_hit = Some(LimitHit::Exit);
            Err(wasmtime::Error::msg("policy called exit"))
        },
    )?;

    instance(linker, "wasi:cli/stdin")?.func_wrap("get-stdin", |_: Ctx, ()| {
        Ok((Resource::<InputStream>::new_own(0),))
    })?;
    instance(linker, "wasi:cli/stdout")?.func_wrap("get-stdout", |_: Ctx, ()| {
        Ok((Resource::<OutputStream>::new_own(STDOUT),))
    })?;
    instance(linker, "wasi:cli/stderr")?.func_wrap("get-stderr", |_: Ctx, ()| {
        Ok((Resource::<OutputStream>::new_own(STDERR),))
    })?;

    // No terminal is attached to a policy.
    resource::<TerminalInput>(
        &mut instance(linker, "wasi:cli/terminal-input")?,
        "terminal-input",
    )?;
    resource::<TerminalOutput>(
        &mut instance(linker, "wasi:cli/terminal-output")?,
        "terminal-output",
    )?;
    instance(linker, "wasi:cli/terminal-stdin")?
        .func_wrap("get-terminal-stdin", |_: Ctx, ()| {
            Ok((None::<Resource<TerminalInput>>,))
        })?;
    for name in ["stdout", "stderr"] {
        instance(linker, &format!("wasi:cli/terminal-{name}"))?
            .func_wrap(&format!("get-terminal-{name}"), |_: Ctx, ()| {
                Ok((None::<Resource<TerminalOutput>>,))
            })?;
    }
    Ok(())
}

fn random_bytes(mut cx: Ctx<'_>, len: u64) -> Result<(Vec<u8>,)> {
    if len > MAX_RANDOM_BYTES {
        return Err(wasmtime::Error::msg(
            "policy asked for too many random bytes",
        ));
    }
    Ok((cx.data_mut().random_bytes(len as usize),))
}

fn random(linker: &mut Linker<SandboxState>) -> Result<()> {
    let mut secure = instance(linker, "wasi:random/random")?;
    secure.func_wrap("get-random-bytes", |cx: Ctx, (len,): (u64,)| {
        random_bytes(cx, len)
    })?;
    secure.func_wrap("get-random-u64", |mut cx: Ctx, ()| {
        Ok((cx.data_mut().next_random(),))
    })?;

    let mut insecure = instance(linker, "wasi:random/insecure")?;
    insecure.func_wrap("get-insecure-random-bytes", |cx: Ctx, (len,): (u64,)| {
        random_bytes(cx, len)
    })?;
    insecure.func_wrap("get-insecure-random-u64", |mut cx: Ctx, ()| {
        Ok((cx.data_mut().next_random(),))
    })?;

    instance(linker, "wasi:random/insecure-seed")?.func_wrap("insecure-seed", |mut cx: Ctx, ()| {
        let state = cx.data_mut();
        Ok(((state.next_random(), state.next_random()),))
    })
}

fn clocks(linker: &mut Linker<SandboxState>) -> Result<()> {
    let mut wall = instance(linker, "wasi:clocks/wall-clock")?;
    wall.func_wrap("now", |cx: Ctx, ()| {
        let seconds = cx.data().now.max(0) as u64;
        Ok((Datetime {
            seconds,
            nanoseconds: 0,
        },))
    })?;
    wall.func_wrap("resolution", |_: Ctx, ()| {
        Ok((Datetime {
            seconds: 1,
            nanoseconds: 0,
        },))
    })?;

    // The monotonic clock stands still at the request's time: a policy cannot time anything.
    let mut mono = instance(linker, "wasi:clocks/monotonic-clock")?;
    mono.func_wrap("now", |cx: Ctx, ()| {
        Ok(((cx.data().now.max(0) as u64).saturating_mul(1_000_000_000),))
    })?;
    mono.func_wrap("resolution", |_: Ctx, ()| Ok((1_000_000_000u64,)))?;
    for name in ["subscribe-instant", "subscribe-duration"] {
        mono.func_wrap(name, |_: Ctx, (_,): (u64,)| {
            Ok((Resource::<Pollable>::new_own(0),))
        })?;
    }
    Ok(())
}
