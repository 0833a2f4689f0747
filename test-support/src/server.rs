//! A real server for a test.

use std::net::SocketAddr;
use std::sync::Arc;

use parley_server::clock::SystemClock;
use parley_server::config::Config;
use parley_server::Server;

/// `parley-server` on its embedded SQLite in a temporary directory, on 127.0.0.1:0.
pub struct TestServer {
    server: Option<Server>,
    config: Config,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    _data: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Sign-ups per address are lifted (every test user signs up from 127.0.0.1), then
    /// `tweak` has its say.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_path_buf(),
            ..Config::default()
        };
        config.limits.register_per_ip = 100;
        tweak(&mut config);
        let server = Server::start(config.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        let addr = server.addr;
        config.listen = addr;
        Self {
            server: Some(server),
            config,
            addr,
            base: format!("http://{addr}"),
            _data: data,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/api/ws", self.addr)
    }

    /// The running server (None while stopped).
    pub fn server(&self) -> Option<&Server> {
        self.server.as_ref()
    }

    /// Stops it the way an operator does (clients are told, sockets close); until
    /// [`TestServer::restart`], connections are refused.
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.unwrap();
        }
    }

    /// Starts it again on the same address with the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        let server = Server::start(self.config.clone(), Arc::new(SystemClock))
            .await
            .unwrap();
        self.server = Some(server);
    }
}
