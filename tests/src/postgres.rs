//! PostgreSQL for the tests: a database of each test's own on the server `tests/run.sh` starts
//! (`tests/steps/postgres.sh` exports `TOLLGATE_TEST_POSTGRES_URL`), and a loopback forwarder
//! in front of it that a test can cut and restore, which is what a database outage or restart
//! looks like to the servers using it (the real server is shared by tests running at once).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::{TcpListener, TcpStream};

/// The server's URL, or a panic that says how to get one.
pub fn server_url() -> String {
    std::env::var("TOLLGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "TOLLGATE_TEST_POSTGRES_URL is not set: run ./tests/run.sh, or start a server with \
             `source tests/steps/postgres.sh && pg_start`"
        )
    })
}

/// A database of its own, dropped by [`PgDatabase::drop_database`] (only after a passing
/// test: a failed one leaves its database to look at).
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    /// `postgres://.../{name}`.
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        let admin_url = server_url();
        let mut bytes = [0u8; 8];
        aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
        let name = format!(
            "tollgate_test_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let url = with_database(&admin_url, &name);
        admin(&admin_url, &format!("CREATE DATABASE {name}")).await;
        PgDatabase {
            admin_url,
            name,
            url,
        }
    }

    /// This database's URL through `forwarder` (same database, the forwarder's port).
    pub fn url_through(&self, forwarder: &Forwarder) -> String {
        let rest = self.url.split_once("://").map_or("", |(_, rest)| rest);
        let (credentials, rest) = rest.split_once('@').unwrap_or(("", rest));
        let path = rest.split_once('/').map_or("", |(_, path)| path);
        let at = if credentials.is_empty() {
            String::new()
        } else {
            format!("{credentials}@")
        };
        format!("postgres://{at}{}/{path}", forwarder.addr)
    }

    pub async fn drop_database(self) {
        admin(
            &self.admin_url,
            &format!("DROP DATABASE {} WITH (FORCE)", self.name),
        )
        .await;
    }
}

/// `url` with its database path replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, params) = url.split_once('?').unwrap_or((url, ""));
    let (server, _) = base.rsplit_once('/').expect("a URL with a database path");
    if params.is_empty() {
        format!("{server}/{name}")
    } else {
        format!("{server}/{name}?{params}")
    }
}

async fn admin(url: &str, statement: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .expect("connect to TOLLGATE_TEST_POSTGRES_URL");
    sqlx::query(statement)
        .execute(&mut conn)
        .await
        .expect(statement);
    conn.close().await.expect("close the admin connection");
}

/// A TCP forwarder on 127.0.0.1 to the PostgreSQL server; [`Forwarder::cut`] closes every
/// connection and refuses new ones until [`Forwarder::restore`].
pub struct Forwarder {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Bumped by `cut`: connections of an older generation close.
    generation: Arc<std::sync::atomic::AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Forwarder {
    /// Starts forwarding (on a runtime of its own, so a test's runtime may block).
    pub fn start() -> Forwarder {
        let target = {
            let url = server_url();
            let rest = url.split_once("://").map_or("", |(_, rest)| rest);
            let rest = rest.split_once('@').map_or(rest, |(_, rest)| rest);
            rest.split(['/', '?']).next().unwrap_or_default().to_owned()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the forwarder");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the forwarder");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (up2, generation2) = (up.clone(), generation.clone());
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (target, generation) = (target.clone(), generation2.clone());
                tokio::spawn(async move {
                    let born = generation.load(Ordering::SeqCst);
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let pipe = pipe(client, server);
                    tokio::pin!(pipe);
                    loop {
                        tokio::select! {
                            _ = &mut pipe => return,
                            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {
                                if generation.load(Ordering::SeqCst) != born { return; }
                            }
                        }
                    }
                });
            }
        });
        Forwarder {
            addr,
            up,
            generation,
            runtime: Some(runtime),
        }
    }

    /// The database is gone: open connections close, new ones are refused.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The database is back.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn pipe(mut client: TcpStream, mut server: TcpStream) {
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
