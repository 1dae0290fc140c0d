//! The client's WebSocket: connects to a session's stream URL and turns the socket into a
//! [`Transport`] of frames.
//!
//! Receives a `ws://` or `wss://` URL; hands on a [`Transport`] whose `rx` ends when the
//! socket closes. TLS is rustls with the aws-lc-rs provider and the system's root
//! certificates (the stack the AWS SDK already uses in this workspace). The socket sends a
//! ping every five minutes, as the plugin's `StartPings` (`PingTimeInterval`) does.
//!
//! The request is not SigV4-signed: the session token in the open frame authorises the
//! connection, as it did for every plugin version before signing was added (newer plugins
//! sign the upgrade request when they have credentials, `getV4SignatureHeader`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::session::{Frame, Transport};

/// `PingTimeInterval`.
const PING_EVERY: Duration = Duration::from_secs(300);
/// Frames buffered each way.
const DEPTH: usize = 512;

/// Connects to `url` and hands on the socket as a transport.
pub async fn connect(url: &str) -> Result<Transport, String> {
    let request = url
        .into_client_request()
        .map_err(|e| format!("stream URL {url:?} is not a WebSocket URL: {e}"))?;
    let uri = request.uri().clone();
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => return Err(format!("stream URL {url:?} is neither ws:// nor wss://")),
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("stream URL {url:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = tokio::time::timeout(
        Duration::from_secs(30),
        TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|_| format!("connecting to {host}:{port} timed out"))?
    .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    if !tls {
        let (ws, _) = tokio_tungstenite::client_async(request, tcp)
            .await
            .map_err(|e| format!("WebSocket handshake with {host}:{port} failed: {e}"))?;
        return Ok(pump(ws));
    }
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|e| format!("{host} is not a valid TLS server name: {e}"))?;
    let stream = tokio_rustls::TlsConnector::from(tls_config()?)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {host}:{port} failed: {e}"))?;
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| format!("WebSocket handshake with {host}:{port} failed: {e}"))?;
    Ok(pump(ws))
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err("no root certificates found on this system".to_string());
            }
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS setup failed: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// Runs a connected socket: frames sent on the transport go out, frames received come in.
pub fn pump<S>(ws: WebSocketStream<S>) -> Transport
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Frame>(DEPTH);
    let (in_tx, in_rx) = mpsc::channel::<Frame>(DEPTH);
    tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            let msg = tokio::select! {
                f = out_rx.recv() => match f {
                    Some(Frame::Binary(b)) => Message::Binary(b.into()),
                    Some(Frame::Text(t)) => Message::Text(t.into()),
                    None => break,
                },
                _ = ping.tick() => Message::Ping(b"keepalive".to_vec().into()),
            };
            if sink.send(msg).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    tokio::spawn(async move {
        while let Some(Ok(m)) = source.next().await {
            let f = match m {
                Message::Binary(b) => Frame::Binary(b.to_vec()),
                Message::Text(t) => Frame::Text(t.to_string()),
                Message::Close(_) => break,
                _ => continue,
            };
            if in_tx.send(f).await.is_err() {
                break;
            }
        }
    });
    Transport {
        tx: out_tx,
        rx: in_rx,
    }
}
