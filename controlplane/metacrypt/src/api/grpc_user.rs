//! gRPC `UserCrypto` (mc.crypt.v1): each RPC answers `UNAVAILABLE` "sealed"
//! before it decodes anything, then calls the core operation its REST twin
//! (`/v1/crypt/{mount}/self|public|encrypt|decrypt`) calls. Plaintexts and
//! public keys are raw bytes here, base64 over REST.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mc_proto::crypt::v1 as pb;
use tonic::{Request, Response, Status as GrpcStatus};

use super::grpc::Services;
use crate::core::{Caller, UserDecrypt, UserEncrypt, UserKeyInfo};
use crate::error::CryptError;

type Reply<T> = Result<Response<T>, GrpcStatus>;

fn key_pb(k: UserKeyInfo) -> Result<pb::UserKeyInfo, CryptError> {
    let versions = k
        .versions
        .into_iter()
        .map(|v| {
            Ok(pb::UserKeyVersion {
                version: v.version,
                public_key: STANDARD
                    .decode(&v.public_key)
                    .map_err(|_| CryptError::internal("a stored public key is not base64"))?,
                created_at: v.created_at,
            })
        })
        .collect::<Result<_, CryptError>>()?;
    Ok(pb::UserKeyInfo {
        account_id: k.account_id,
        username: k.username,
        latest_version: k.latest_version,
        versions,
    })
}

#[tonic::async_trait]
impl pb::user_crypto_server::UserCrypto for Services {
    async fn get_own_key(&self, r: Request<pb::UserMountRequest>) -> Reply<pb::UserKeyInfo> {
        self.0.require_unsealed()?;
        let c = Caller::from_grpc(&r);
        let k = self.0.user_own_key(&c, &r.into_inner().mount)?;
        Ok(Response::new(key_pb(k)?))
    }

    async fn create_own_key(&self, r: Request<pb::UserMountRequest>) -> Reply<pb::UserKeyInfo> {
        self.0.require_unsealed()?;
        let c = Caller::from_grpc(&r);
        let k = self.0.user_init_key(&c, &r.into_inner().mount)?;
        Ok(Response::new(key_pb(k)?))
    }

    async fn rotate_own_key(&self, r: Request<pb::UserMountRequest>) -> Reply<pb::UserKeyInfo> {
        self.0.require_unsealed()?;
        let c = Caller::from_grpc(&r);
        let k = self.0.user_rotate_key(&c, &r.into_inner().mount)?;
        Ok(Response::new(key_pb(k)?))
    }

    async fn get_public_key(&self, r: Request<pb::UserPublicKeyRequest>) -> Reply<pb::UserKeyInfo> {
        self.0.require_unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let k = self.0.user_public_key(&c, &r.mount, &r.account)?;
        Ok(Response::new(key_pb(k)?))
    }

    async fn encrypt(&self, r: Request<pb::UserEncryptRequest>) -> Reply<pb::UserEncryptResponse> {
        self.0.require_unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let input = UserEncrypt {
            to: r.to,
            plaintext: STANDARD.encode(&r.plaintext),
        };
        let out = self.0.user_encrypt(&c, &r.mount, &input)?;
        Ok(Response::new(pb::UserEncryptResponse {
            ciphertext: out.ciphertext,
            recipient_id: out.recipient_id,
            recipient_username: out.recipient_username,
            key_version: out.key_version,
        }))
    }

    async fn decrypt(&self, r: Request<pb::UserDecryptRequest>) -> Reply<pb::UserDecryptResponse> {
        self.0.require_unsealed()?;
        let c = Caller::from_grpc(&r);
        let r = r.into_inner();
        let out = self.0.user_decrypt(
            &c,
            &r.mount,
            &UserDecrypt {
                ciphertext: r.ciphertext,
            },
        )?;
        let plaintext = STANDARD
            .decode(&out.plaintext)
            .map_err(|_| CryptError::internal("plaintext is not base64"))?;
        Ok(Response::new(pb::UserDecryptResponse {
            plaintext,
            sender_id: out.sender_id,
            sender_username: out.sender_username,
        }))
    }
}
