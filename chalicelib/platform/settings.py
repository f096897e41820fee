"""Configuration, read once per container from the environment.  Stages set it in ``.chalice/config.json``.

The container's settings are ``Runtime.settings`` (``chalicelib.platform.runtime``),
which also fills in what the app secret holds.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta


class ConfigurationError(Exception):
    """A required setting is missing or malformed."""


# libpq's sslmode values.  Outside the local stage the default is verify-full: personal data
# crosses that link, and anything weaker skips the certificate or its host name.  A weaker
# DB_SSLMODE set by hand there is logged at each connection (the test suite runs the deployed
# stages' configuration against its own server, which has no TLS); no stage's config sets one
# (tests/unit/test_db_tls_settings.py).
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
AWS_SSLMODE = "verify-full"
# libpq (16+) loads OpenSSL's trusted roots for "system": RDS Proxy's certificate is public
# (Amazon Trust Services).  migrate and the drift watch reach the instance itself, whose
# certificate the RDS CA signs: their DB_SSLROOTCERT names the bundle the package ships.
AWS_SSLROOTCERT = "system"


@dataclass(frozen=True)
class Settings:
    """Every setting the code reads, by its pinned environment name."""

    database_url: str | None = None
    db_secret_arn: str | None = None
    db_host: str | None = None
    db_port: int | None = None
    db_name: str | None = None
    # Behind RDS Proxy in transaction pooling, server-side prepared statements
    # break; "0" turns psycopg's automatic preparation off.
    db_prepare: bool = True
    db_connect_timeout_s: int = 5
    # DB_SSLMODE and DB_SSLROOTCERT: libpq's sslmode and sslrootcert.  None leaves libpq's
    # own default (prefer; the local stage); outside it they default to verify-full and
    # "system" (``from_env``).
    db_sslmode: str | None = None
    db_sslrootcert: str | None = None
    auth_jwt_secret: str | None = None
    # In AWS: Cognito's JWKS and issuer; RS256 tokens are verified against them.
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    # Cognito app clients whose access tokens are accepted (comma-separated in AUTH_CLIENT_IDS).
    auth_client_ids: frozenset[str] = frozenset()
    # Abuse limits (docs/security.md): one-time codes per source address per hour and
    # for everyone per UTC day (WhatsApp bills each), and how long a registration that
    # was never verified holds its phone and e-mail.  Production defaults; the local
    # stage raises the first two.
    otp_sends_per_client_per_hour: int = 10
    otp_sends_per_day: int = 5000
    unverified_expire_after_h: float = 24.0
    # The HMAC key one-time codes are hashed with; only the hash is stored.
    otp_hash_key: str | None = None
    # How long the personal data of a registration that ended without becoming a customer is
    # kept after its last status change (chalicelib.privacy; docs/api.md, "Personal data").
    personal_data_retention_days: int = 90
    migrate_lock_timeout: str = "5s"
    migrate_statement_timeout: str = "15min"
    migrate_wait_for_lock_s: float = 120.0
    customer_queue_url: str | None = None
    # The Graph API base with its version, e.g. https://graph.facebook.com/v21.0.
    whatsapp_api_url: str | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_token: str | None = None
    whatsapp_timeout_s: float = 5.0
    # In AWS: Secrets Manager secrets (JSON), read at first use (``chalicelib.platform.secrets``),
    # one per key so that each function is given only what it uses: OTP_SECRET_ARN holds
    # OTP_HASH_KEY (the API), WHATSAPP_SECRET_ARN holds WHATSAPP_TOKEN (the API, the worker and
    # the sender).  APP_SECRET_ARN, one secret with both, is still read where set.  The
    # environment wins where set.
    otp_secret_arn: str | None = None
    whatsapp_secret_arn: str | None = None
    app_secret_arn: str | None = None
    # The deployment stage (STAGE): outside "local", WhatsApp must be reached over https.
    stage: str = "local"

    def __post_init__(self) -> None:
        if self.db_sslmode is not None and self.db_sslmode not in SSL_MODES:
            raise ConfigurationError(
                f"DB_SSLMODE={self.db_sslmode!r} is not one of libpq's modes: {', '.join(SSL_MODES)}"
            )

    @property
    def unverified_expire_after(self) -> timedelta:
        """``unverified_expire_after_h`` as a timedelta."""
        return timedelta(hours=self.unverified_expire_after_h)

    @property
    def personal_data_retention(self) -> timedelta:
        """``personal_data_retention_days`` as a timedelta."""
        return timedelta(days=self.personal_data_retention_days)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        """Read the settings from ``env``; raises ``ConfigurationError`` on a malformed value."""
        stage = env.get("STAGE") or "local"
        sslmode = env.get("DB_SSLMODE") or (None if stage == "local" else AWS_SSLMODE)
        try:
            return cls(
                database_url=env.get("DATABASE_URL") or None,
                db_secret_arn=env.get("DB_SECRET_ARN") or None,
                db_host=env.get("DB_HOST") or None,
                db_port=int(env["DB_PORT"]) if env.get("DB_PORT") else None,
                db_name=env.get("DB_NAME") or None,
                db_prepare=env.get("DB_PREPARED_STATEMENTS", "1") not in ("0", "false", "off"),
                db_connect_timeout_s=int(env.get("DB_CONNECT_TIMEOUT_S", "5")),
                db_sslmode=sslmode,
                # libpq takes "system" with verify-full only.
                db_sslrootcert=env.get("DB_SSLROOTCERT")
                or (AWS_SSLROOTCERT if stage != "local" and sslmode == AWS_SSLMODE else None),
                auth_jwt_secret=env.get("AUTH_JWT_SECRET") or None,
                auth_jwks_url=env.get("AUTH_JWKS_URL") or None,
                auth_issuer=env.get("AUTH_ISSUER") or None,
                auth_client_ids=frozenset(c.strip() for c in env.get("AUTH_CLIENT_IDS", "").split(",") if c.strip()),
                otp_sends_per_client_per_hour=int(env.get("OTP_SENDS_PER_CLIENT_PER_HOUR", "10")),
                otp_sends_per_day=int(env.get("OTP_SENDS_PER_DAY", "5000")),
                unverified_expire_after_h=float(env.get("UNVERIFIED_EXPIRE_AFTER_H", "24")),
                otp_hash_key=env.get("OTP_HASH_KEY") or None,
                personal_data_retention_days=int(env.get("PERSONAL_DATA_RETENTION_DAYS", "90")),
                migrate_lock_timeout=env.get("MIGRATE_LOCK_TIMEOUT", "5s"),
                migrate_statement_timeout=env.get("MIGRATE_STATEMENT_TIMEOUT", "15min"),
                migrate_wait_for_lock_s=float(env.get("MIGRATE_WAIT_FOR_LOCK_S", "120")),
                customer_queue_url=env.get("CUSTOMER_QUEUE_URL") or None,
                whatsapp_api_url=env.get("WHATSAPP_API_URL") or None,
                whatsapp_phone_number_id=env.get("WHATSAPP_PHONE_NUMBER_ID") or None,
                whatsapp_token=env.get("WHATSAPP_TOKEN") or None,
                whatsapp_timeout_s=float(env.get("WHATSAPP_TIMEOUT_S", "5")),
                otp_secret_arn=env.get("OTP_SECRET_ARN") or None,
                whatsapp_secret_arn=env.get("WHATSAPP_SECRET_ARN") or None,
                app_secret_arn=env.get("APP_SECRET_ARN") or None,
                stage=stage,
            )
        except ValueError as error:
            raise ConfigurationError(f"malformed setting: {error}") from error
