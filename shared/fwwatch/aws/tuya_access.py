"""How a function reaches Tuya: credentials from Secrets Manager, the token and the learned
rate shared in the control table. Composed into the services that call Tuya."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from .dynamo import batch_get
from .observability import logger
from .rate_dynamodb import DynamoRateMemory
from .secrets import SecretReader, powertools_secret
from .settings import TuyaAccessSettings
from .token_dynamodb import DynamoTokenStore

if TYPE_CHECKING:
    from ..tuya import TuyaClient, TuyaSettings

__all__ = ["TuyaAccess"]


class TuyaAccess:
    """Builds Tuya clients for one function: its share of the rate, the shared token.

    ``rate_share`` names the function's share of the project's rate limit ("scheduler",
    "checker-of-N"), so that each remembers the limit it learned for its own share.
    """

    def __init__(
        self,
        settings: TuyaAccessSettings,
        *,
        qps: float,
        dynamodb: Any,
        rate_share: str,
        read_secret: SecretReader = powertools_secret,
        transport: Any = None,
    ) -> None:
        self.settings = settings
        self._qps = qps
        self._dynamodb = dynamodb
        self._rate_share = rate_share
        self._read_secret = read_secret
        self._transport = transport
        self.tokens = DynamoTokenStore(dynamodb, settings.control_table)
        self.rates: DynamoRateMemory | None = None

    def tuya_settings(self) -> TuyaSettings:
        """The client's settings: the secret's credentials and the function's tuning."""
        return self.settings.client_settings(
            self._read_secret(self.settings.tuya_secret_name), qps=self._qps
        )

    def client(self) -> TuyaClient:
        """A client that starts at the rate limit learned by earlier invocations."""
        from ..tuya import TuyaClient  # loaded by the functions that call Tuya only

        settings = self.tuya_settings()
        if self.rates is None:  # once per container: the learned rate is kept in memory
            self.rates = DynamoRateMemory(
                self._dynamodb,
                self.settings.control_table,
                endpoint=settings.base_url,
                access_id=settings.access_id,
                share=self._rate_share,
            )
            self._read_token_and_rate(self.rates)
        try:
            known = self.rates.load()
        except (ClientError, BotoCoreError) as exc:  # a cache: start slowly instead
            logger.warning(f"could not read the learned rate limit: {exc}")
            known = None
        return TuyaClient(
            settings, token_store=self.tokens, transport=self._transport, known_rate_limit=known
        )

    def _read_token_and_rate(self, rates: DynamoRateMemory) -> None:
        """A new container's first read: the shared token and the learned rate in one request.

        Best effort: on failure each is read on its own, as before, when first needed.
        """
        keys = [{"pk": rates.key}, {"pk": self.tokens.key}]
        try:
            items = batch_get(self._dynamodb, self.settings.control_table, keys, consistent=True)
        except (ClientError, BotoCoreError, RuntimeError) as exc:
            logger.warning(f"could not read the shared token and the learned rate: {exc}")
            return
        found = {str(item["pk"]): item for item in items}
        rates.prime(found.get(rates.key))
        self.tokens.prime(found.get(self.tokens.key))

    def keep_learned_rate(self, client: TuyaClient) -> None:
        """Write the rate limit the client learned, when it changed (best effort)."""
        if self.rates is None:
            return
        try:
            if self.rates.save(client.learned_rate_limit):
                logger.info("learned Tuya's rate limit", extra={"rps": client.learned_rate_limit})
        except (ClientError, BotoCoreError) as exc:  # a cache: the batch's outcome matters more
            logger.warning(f"could not keep the learned rate limit: {exc}")
