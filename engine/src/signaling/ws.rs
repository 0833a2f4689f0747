//! The WebSocket transport: `GET /api/ws` with the access token as a bearer and the
//! protocol version as the subprotocol.

use futures_util::{SinkExt, StreamExt as _};
use parley_shared::signal::SUBPROTOCOL;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};
use tokio_tungstenite::tungstenite::Message;

use super::task::{Conn, ConnectError, Transport};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct WebSocket {
    pub url: String,
}

impl Transport for WebSocket {
    type Conn = Socket;

    async fn connect(&self, token: &str) -> Result<Socket, ConnectError> {
        let failed = |e: &dyn std::fmt::Display| ConnectError::Failed(e.to_string());
        let mut req = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| failed(&e))?;
        let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| failed(&e))?;
        req.headers_mut().insert(header::AUTHORIZATION, auth);
        req.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
        // Nagle off: signaling is small messages that should leave at once.
        match tokio_tungstenite::connect_async_with_config(req, None, true).await {
            Ok((socket, _)) => Ok(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) if res.status() == 401 => {
                Err(ConnectError::Unauthorized)
            }
            Err(e) => Err(failed(&e)),
        }
    }
}

impl Conn for Socket {
    async fn send(&mut self, text: String) -> Result<(), String> {
        SinkExt::send(self, Message::Text(text.into()))
            .await
            .map_err(|e| e.to_string())
    }

    async fn recv(&mut self) -> Option<Result<String, String>> {
        loop {
            return match self.next().await {
                Some(Ok(Message::Text(t))) => Some(Ok(t.to_string())),
                Some(Ok(Message::Close(_))) | None => None,
                Some(Err(e)) => Some(Err(e.to_string())),
                Some(Ok(_)) => continue,
            };
        }
    }

    async fn close(&mut self) {
        let _ = SinkExt::close(self).await;
    }
}
