//! The list of hosted services — the one place a new service is added.
//!
//! `hosted_services!` takes `section: Type` pairs (the section is the
//! service's [`HostedService::NAME`], checked by a test) and generates the
//! control plane's config struct with one typed section per service, and the
//! functions that validate, list the stores of, mount, and describe the
//! endpoints of every service, in the listed order. MCIAS comes first: it
//! provides the token verifier the others are given.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use mc_kit::config::{Invalid, Validate};
use mc_kit::store::StoreSpec;
use mc_kit::telemetry::LogConfig;
use mc_service::hosted::{HostedService, MountError, Mounted, ServiceCtx, store_spec};
use mc_service::tls::TlsFiles;
use serde::Deserialize;

use crate::config::ServerSection;

macro_rules! hosted_services {
    ($($section:ident: $service:ty),+ $(,)?) => {
        /// `mcd controlplane --config FILE`: see [`crate::config`].
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ControlplaneConfig {
            /// Parent of every hosted service's data directory.
            pub data_dir: PathBuf,
            pub server: ServerSection,
            pub tls: TlsFiles,
            #[serde(default)]
            pub log: LogConfig,
            $(
                #[serde(default)]
                pub $section: <$service as HostedService>::Config,
            )+
        }

        impl ControlplaneConfig {
            pub(crate) fn validate_services(&self) -> Result<(), Invalid> {
                $( self.$section.validate().map_err(|e| e.under(stringify!($section)))?; )+
                Ok(())
            }
        }

        /// The stores of every hosted service.
        pub(crate) fn service_stores(config: &ControlplaneConfig) -> Vec<StoreSpec> {
            vec![$( store_spec::<$service>(&config.data_dir), )+]
        }

        /// Opens and mounts every hosted service, in order.
        pub(crate) fn mount_all(config: &ControlplaneConfig, ctx: &ServiceCtx) -> Result<Mounted, MountError> {
            let mut mounted = Mounted::default();
            $( mounted.mount::<$service>(ctx, config.$section.clone())?; )+
            Ok(mounted)
        }

        /// Each service's named URLs, under its `endpoints.json` key.
        pub fn service_endpoints(config: &ControlplaneConfig) -> BTreeMap<&'static str, BTreeMap<String, String>> {
            let ctx = context(config);
            BTreeMap::from([$( (<$service as HostedService>::ENDPOINTS_KEY, <$service>::endpoints(&ctx)), )+])
        }

        /// `(section, NAME)` of every service, for the naming test.
        #[cfg(test)]
        fn sections() -> Vec<(&'static str, &'static str)> {
            vec![$( (stringify!($section), <$service as HostedService>::NAME), )+]
        }
    };
}

hosted_services! {
    mcias: mc_mcias::Mcias,
    metacrypt: mc_metacrypt::Metacrypt,
    mcr: mc_mcr::Mcr,
    mcp: mc_master::Master,
}

/// What the host gives every service.
pub(crate) fn context(config: &ControlplaneConfig) -> ServiceCtx {
    let addr = |a: SocketAddr| a;
    ServiceCtx {
        data_dir: config.data_dir.clone(),
        rest_addr: addr(config.server.rest),
        grpc_addr: addr(config.server.grpc),
        verifier: None,
        login: None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_section_is_named_after_its_service() {
        for (section, name) in super::sections() {
            assert_eq!(section, name, "a service's config section is its NAME");
        }
    }
}
