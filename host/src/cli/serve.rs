//! `tollgate serve`: the exchange server, built by [`App::build`](crate::app::App::build).

use crate::app::App;
use crate::common::shutdown_signal;
use crate::config::ServeArgs;
use anyhow::Context;
use std::process::ExitCode;

pub fn run(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    let app = App::build(&args, local).await?;
    let stop = shutdown_signal();
    eprintln!(
        "tollgate listening on http://{local} (public URL {})",
        app.public_url
    );
    app.serve(listener, stop).await?;
    eprintln!("tollgate stopped");
    Ok(())
}
