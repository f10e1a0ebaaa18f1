//! SSL_GET: HTTP over TLS (rustls). As in keepalived, the server
//! certificate is not verified unless a CA file is given; handshake
//! signatures are still checked against the presented certificate. A
//! client certificate, when configured, is presented to servers that ask.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::WantsClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ConfigBuilder, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use crate::config::{ConnectOptions, SslGet};
use crate::error::ProbeError;

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Accepts any certificate chain (keepalived's SSL_GET default) but checks
/// that the handshake is signed by the presented certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

fn tls_error(e: impl std::fmt::Display) -> ProbeError {
    ProbeError::Tls(e.to_string())
}

fn client_config(ssl: &SslGet) -> Result<Arc<ClientConfig>, ProbeError> {
    static UNVERIFIED: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let builder = || {
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)
    };
    let Some(ca_file) = &ssl.ca_file else {
        let shared = ssl.client_certificate.is_none();
        if let (true, Some(config)) = (shared, UNVERIFIED.get()) {
            return Ok(config.clone());
        }
        let verifier = AcceptAnyCertificate(provider().signature_verification_algorithms);
        let config = Arc::new(client_auth(
            builder()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier)),
            ssl,
        )?);
        return Ok(if shared {
            UNVERIFIED.get_or_init(|| config).clone()
        } else {
            config
        });
    };
    let mut roots = RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(ca_file).map_err(|e| tls_error(format!("CA file: {e}")))?
    {
        let cert = cert.map_err(|e| tls_error(format!("CA file: {e}")))?;
        roots.add(cert).map_err(tls_error)?;
    }
    Ok(Arc::new(client_auth(
        builder()?.with_root_certificates(roots),
        ssl,
    )?))
}

/// Finishes `builder` with the client certificate of `ssl`, if any, read
/// from its PEM files.
fn client_auth(
    builder: ConfigBuilder<ClientConfig, WantsClientCert>,
    ssl: &SslGet,
) -> Result<ClientConfig, ProbeError> {
    let Some(client) = &ssl.client_certificate else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = CertificateDer::pem_file_iter(&client.certificate)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(format!("client certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_file(&client.key)
        .map_err(|e| tls_error(format!("client key: {e}")))?;
    builder.with_client_auth_cert(chain, key).map_err(tls_error)
}

/// The SSL_GET probe: TLS handshake then every url, one connection each.
pub(crate) async fn probe(
    dst: SocketAddr,
    co: &ConnectOptions,
    ssl: &SslGet,
) -> Result<(), ProbeError> {
    let config = client_config(ssl)?;
    let connector = TlsConnector::from(config);
    let server_name = match &ssl.sni {
        Some(name) => ServerName::try_from(name.clone()).map_err(tls_error)?,
        None => ServerName::IpAddress(dst.ip().into()),
    };
    let host = super::http::host_header(dst);
    for url in super::http::default_urls(&ssl.http) {
        let tcp = super::tcp::connect(dst, co).await?;
        let tls = connector
            .connect(server_name.clone(), tcp)
            .await
            .map_err(tls_error)?;
        super::http::check_url(tls, &ssl.http, url, &host).await?;
    }
    Ok(())
}
