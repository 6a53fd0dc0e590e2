//! rustls client configuration from [`TlsOptions`]: the same verification rules on every
//! runtime.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tracing::{debug, warn};

use bytes::Bytes;
use mqtt_session::client::{BrokerUrl, OptionsError, PemSource, TlsOptions};

fn tls_error(context: &str, error: impl std::fmt::Display) -> OptionsError {
    OptionsError::Tls(format!("{context}: {error}"))
}

/// Builds the rustls configuration: chains and host names are verified, against the given CAs
/// and (unless turned off, or by default when a CA is given) the system's roots, unless the
/// options say `danger_accept_invalid_certs`; the client certificate and ALPN protocols are
/// added when given.
pub fn client_config(options: &TlsOptions) -> Result<Arc<ClientConfig>, OptionsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("protocol versions", e))?;
    let builder = if options.danger_accept_invalid_certs {
        warn!("TLS certificate verification is off");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        builder.with_root_certificates(root_store(options)?)
    };
    let mut config = match &options.client_cert {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_slice_iter(&load(cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_error("client certificate", e))?;
            if certs.is_empty() {
                return Err(OptionsError::Tls(
                    "no certificate in the client certificate PEM".into(),
                ));
            }
            let key = PrivateKeyDer::from_pem_slice(&load(key)?)
                .map_err(|e| tls_error("client key", e))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| tls_error("client certificate", e))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = options.alpn.clone();
    Ok(Arc::new(config))
}

/// The rustls configuration for a client of `brokers`: `None` when none of them uses TLS, so
/// that plain clients never load root certificates.
pub fn client_config_for(
    brokers: &[BrokerUrl],
    options: &TlsOptions,
) -> Result<Option<Arc<ClientConfig>>, OptionsError> {
    if brokers.iter().any(|b| b.scheme.is_tls()) {
        client_config(options).map(Some)
    } else {
        Ok(None)
    }
}

fn root_store(options: &TlsOptions) -> Result<RootCertStore, OptionsError> {
    let mut roots = RootCertStore::empty();
    for source in &options.ca {
        let pem = load(source)?;
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| tls_error("CA certificate", e))?;
            roots
                .add(cert)
                .map_err(|e| tls_error("CA certificate", e))?;
            found += 1;
        }
        if found == 0 {
            return Err(OptionsError::Tls(format!(
                "no certificate in CA {source:?}"
            )));
        }
    }
    if options.use_system_roots() {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            debug!(%error, "while loading the system's root certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        debug!(added, ignored, "system root certificates");
    }
    if roots.is_empty() {
        return Err(OptionsError::Tls(
            "no trusted root certificate: give a CA or install the system's CA bundle".into(),
        ));
    }
    Ok(roots)
}

/// The name to verify the broker's certificate against and to send in SNI.
pub fn server_name(host: &str, options: &TlsOptions) -> std::io::Result<ServerName<'static>> {
    let name = options.server_name.as_deref().unwrap_or(host);
    ServerName::try_from(name.to_owned())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

/// Accepts every certificate but still checks handshake signatures, so the session is
/// encrypted to whoever holds the presented key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

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
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Reads PEM data: the text itself, or the file, read now (when a client starts).
fn load(source: &PemSource) -> Result<Bytes, OptionsError> {
    match source {
        PemSource::Pem(pem) => Ok(pem.clone()),
        PemSource::File(path) => {
            std::fs::read(path)
                .map(Bytes::from)
                .map_err(|error| OptionsError::ReadFile {
                    path: path.clone(),
                    error,
                })
        }
    }
}
