"""SMS over Twilio: an input channel that checks Twilio's signature, and an output channel that
sends every reply through the backend (which splits, refuses opted-out numbers and calls the
provider).

credentials.yml:

    channels.sms.SmsInput:
      auth_token: ${TWILIO_AUTH_TOKEN}
      public_url: ${SMS_PUBLIC_URL}

Twilio is pointed at ``public_url`` (e.g. https://bot.example.com/webhooks/sms/webhook); that
exact URL is what its X-Twilio-Signature covers, whatever host and port Rasa sees behind a proxy.

Inbound POST /webhooks/sms/webhook, in this order:
  body over 16 KB -> 413; missing or wrong signature (or no auth token configured) -> 403;
  no From or Body -> 400; MessageSid claimed in the backend with a lease (channels/claims.py):
  already processed (a Twilio retry) -> empty TwiML, nothing done; claimed by another process that
  is still working on it -> waited for up to REPLY_WITHIN s, then empty TwiML; claimed by a process
  that died mid-turn (lease run out) -> taken over and processed;
  STOP / 退订 / TD / T -> one confirmation, then the number is opted out; START / UNSTOP / 恢复 ->
  opted back in, then a confirmation; neither keyword is passed to Rasa;
  otherwise the message goes to Rasa in a background task through channels/guard.py (empty or too
  long -> a polite reply; too fast -> 「您发送得太快了」; 「/intent」 only for our buttons; a one-time
  code masked), the answers going out through the output channel, and Twilio gets an empty TwiML
  <Response/> when the turn is done or after REPLY_WITHIN s (Twilio waits 15 s): if the process dies
  first, Twilio sees a failed webhook. The claim is completed once Rasa has processed the message.

The sender id is "sms:<E.164 number>"; the backend treats a customer's registered number as a
verified identity. Buttons are sent as numbered lines, and a reply of just that number is taken
as the button. Logs carry masked numbers only, never message text.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
import unicodedata
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import parse_qs

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Blueprint, response
from sanic.request import Request, RequestParameters
from sanic.response import HTTPResponse
from twilio.request_validator import RequestValidator

from bot.backend import BackendClient, BackendError, backend as shared_backend, close_backend
from bot.settings import get_settings
from channels import guard
from channels.claims import (
    CLAIMED, DONE, IN_PROGRESS, Lease, answer_when_done, new_owner, processed_before, settle, taken_over,
)
from texts import text, words

log = logging.getLogger(__name__)

CHANNEL = "sms"
MAX_BODY_BYTES = 16 * 1024
MAX_FIELDS = 100
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

OPT_OUT_WORDS = frozenset(words("vocabulary.sms_opt_out"))
# 「恢复提醒」 after 「退订」 must work by SMS too (issue 14): the number is opted out, so Rasa's
# answer could not be delivered; the channel opts it back in itself.
OPT_IN_WORDS = frozenset(words("vocabulary.sms_opt_in"))
REMINDER_WORDS = tuple(words("vocabulary.sms_reminder_word"))
FINAL_STOPS = "".join(words("vocabulary.sms_final_stops"))
OPT_OUT_REPLY = text("channel.sms.opted_out")
OPT_IN_REPLY = text("channel.sms.opted_in")
CHOOSE_BY_NUMBER = text("channel.sms.choose_by_number")
# Twilio waits 15 s for the webhook; the STOP confirmation is sent before answering it.
CONFIRMATION_TIMEOUT = 8.0
REPLY_WITHIN = 3.5  # seconds the webhook waits for the turn before answering anyway


def mask_number(number: str | None) -> str:
    """+8613812345678 -> +86138****5678 (the product's phone mask, country code kept)."""
    if not number or len(number) < 8:
        return "****"
    return f"{number[:-8]}****{number[-4:]}"


def number_of(sender_id: str) -> str | None:
    """The E.164 number of an SMS conversation ("sms:+86138..."), or None for another channel."""
    channel, _, number = sender_id.partition(":")
    return number if channel == CHANNEL and E164.match(number) else None


def keyword(text: str) -> str | None:
    """"out" for an opt-out keyword, "in" for an opt-in keyword: the whole message, any case,
    full- or half-width, surrounding spaces and a final full stop ignored."""
    word = unicodedata.normalize("NFKC", text).strip().rstrip(FINAL_STOPS).strip().casefold()
    if word in OPT_OUT_WORDS:
        return "out"
    if word in OPT_IN_WORDS:
        return "in"
    return None


def render_buttons(text: str | None, buttons: Iterable[dict[str, Any]]) -> str:
    """Buttons as numbered lines under the text: an SMS has no buttons."""
    lines = [text.rstrip()] if text and text.strip() else []
    titles = [str(b.get("title") or b.get("payload") or "") for b in buttons]
    lines += [f"{i}. {title}" for i, title in enumerate(titles, 1)]
    if titles:
        lines.append(CHOOSE_BY_NUMBER)
    return "\n".join(lines)


def default_public_url() -> str:
    """SMS_PUBLIC_URL, else Rasa on this host at RASA_PORT (bot.settings)."""
    return get_settings().sms_webhook_url


class SmsOutput(OutputChannel):
    """Every text goes to the backend's /sms/send: it splits into 70-character segments, refuses
    opted-out numbers before the provider is called, and records the message masked."""

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    def __init__(self, backend: BackendClient) -> None:
        self.backend = backend

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        number = number_of(recipient_id)
        if number is None:
            log.warning("sms: not an SMS conversation, nothing sent")
            return
        if not text or not text.strip():
            return
        try:
            sent = await self.backend.send_sms(number, text.strip(), purpose="reply")
        except Exception as exc:  # a lost reply must not break the conversation turn
            log.error("sms: reply to %s failed: %s", mask_number(number), type(exc).__name__)
            return
        if sent is None:
            log.info("sms: reply to %s refused by the backend (opted out or invalid)", mask_number(number))

    async def send_text_with_buttons(self, recipient_id: str, text: str, buttons: list[dict[str, Any]],
                                     **kwargs: Any) -> None:
        await self.send_text_message(recipient_id, render_buttons(text, buttons))

    async def send_quick_replies(self, recipient_id: str, text: str, quick_replies: list[dict[str, Any]],
                                 **kwargs: Any) -> None:
        await self.send_text_message(recipient_id, render_buttons(text, quick_replies))

    async def send_custom_json(self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any) -> None:
        # Never send raw JSON to a phone; a custom payload may carry a text meant for SMS.
        text = json_message.get("text") if isinstance(json_message, dict) else None
        if isinstance(text, str):
            await self.send_text_message(recipient_id, text)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        log.info("sms: image not sent (text only)")

    async def send_attachment(self, recipient_id: str, attachment: str, **kwargs: Any) -> None:
        log.info("sms: attachment not sent (text only)")


class SmsInput(InputChannel):
    @classmethod
    def name(cls) -> str:
        return CHANNEL

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> "SmsInput":
        c = credentials or {}
        return cls(
            auth_token=c.get("auth_token") or get_settings().twilio_auth_token,
            public_url=c.get("public_url") or default_public_url(),
        )

    def __init__(self, auth_token: str, public_url: str, backend: BackendClient | None = None) -> None:
        self.auth_token = auth_token or ""
        self.public_url = public_url
        self.backend = backend or shared_backend()
        self._tasks: set[asyncio.Task] = set()
        if not self.auth_token:
            log.warning("sms: TWILIO_AUTH_TOKEN is not set; every inbound SMS will be refused (403)")
        elif not public_url.startswith("https://"):
            log.warning("sms: SMS_PUBLIC_URL is not https (development set-up?)")

    def get_output_channel(self) -> OutputChannel:
        return SmsOutput(self.backend)

    # Checks ---------------------------------------------------------------------------------

    @staticmethod
    def _too_large(request: Request) -> bool:
        try:
            declared = int(request.headers.get("content-length") or 0)
        except ValueError:
            declared = 0
        return declared > MAX_BODY_BYTES or len(request.body or b"") > MAX_BODY_BYTES

    @staticmethod
    def _form(request: Request) -> RequestParameters | None:
        """Twilio's form fields, blank ones included: Twilio signs them all, and Sanic's own
        request.form drops blank values (ToCity=, FromZip= ...), which would fail the check."""
        try:
            fields = parse_qs(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                              max_num_fields=MAX_FIELDS)
        except (UnicodeDecodeError, ValueError):
            return None
        return RequestParameters(fields)

    def _signed(self, request: Request, form: RequestParameters | None) -> bool:
        signature = request.headers.get("x-twilio-signature")
        if not signature or not self.auth_token or form is None:
            return False
        url = self.public_url + (f"?{request.query_string}" if request.query_string else "")
        return RequestValidator(self.auth_token).validate(url, form, signature)

    # Handling -------------------------------------------------------------------------------

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("sms_webhook", __name__)
        bp.listener(close_backend, "after_server_stop")

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if self._too_large(request):
                return response.text("payload too large", status=413)
            form = self._form(request)
            if not self._signed(request, form):
                log.warning("sms: request with a missing or invalid signature refused")
                return response.text("forbidden", status=403)
            number, text = form.get("From"), form.get("Body")
            sid = form.get("MessageSid") or form.get("SmsSid")
            if number is None or text is None or not sid:
                return response.text("From, Body and MessageSid are required", status=400)
            number = number.strip()
            if not E164.match(number):
                return response.text("From must be an E.164 number", status=400)
            started, owner = time.monotonic(), new_owner()
            try:
                claim = await self.backend.claim(CHANNEL, number, sid, owner)
                if claim.get("state") == IN_PROGRESS:  # a retry while another process holds it
                    claim = await settle(self.backend, CHANNEL, number, sid, owner, claim, REPLY_WITHIN)
            except BackendError as exc:
                log.error("sms: could not claim a message from %s: %s", mask_number(number), type(exc).__name__)
                return response.text("backend unavailable", status=503)
            state = claim.get("state", CLAIMED if claim.get("first_time") else DONE)
            if state != CLAIMED:
                log.info("sms: retry of a message from %s not processed (%s)", mask_number(number), state)
                return twiml()
            lease = Lease(self.backend, CHANNEL, sid, owner, claim.get("lease_seconds", 10)).start()
            if taken_over(claim) and await processed_before(request.app, f"{CHANNEL}:{number}", sid):
                await lease.complete()  # its owner died after Rasa saved the turn: not processed again
                log.info("sms: taken-over message from %s was processed already", mask_number(number))
                return twiml()
            try:
                reply, task = await self._dispatch(on_new_message, request.app, number, text, sid,
                                                   claim.get("identity") or {}, lease)
            except BaseException:
                await asyncio.shield(lease.release())
                raise
            if task is None:
                await lease.complete()
                return reply
            if not await answer_when_done(task, started, REPLY_WITHIN):
                return response.text("not handled", status=500)
            return reply

        return bp

    async def _dispatch(self, on_new_message: Callable[[UserMessage], Awaitable[Any]], app: Any, number: str,
                        text: str, sid: str, identity: dict, lease: Lease) -> tuple[HTTPResponse, asyncio.Task | None]:
        """The answer to Twilio, and the background turn if the message goes to Rasa (it completes
        the lease); without a turn the caller completes it."""
        word = keyword(text)
        if word == "out":
            return (twiml() if await self._opt_out(number) else response.text("not stored", status=500)), None
        if word == "in":
            if not await self._opt_in(number):
                return response.text("not stored", status=500), None
            if any(w in text for w in REMINDER_WORDS):  # 「恢复提醒」 also turns reminders back on: the bot's resubscribe does it
                return twiml(), self._spawn(self._handle(on_new_message, app, number, text, sid, lease))
            return twiml(), None
        if identity.get("opted_out"):
            # Nothing may be sent to the number until it opts in again: an answer would be lost.
            log.info("sms: message from opted-out %s not answered", mask_number(number))
            return twiml(), None
        return twiml(), self._spawn(self._handle(on_new_message, app, number, text, sid, lease))

    async def _opt_out(self, number: str) -> bool:
        """Confirm first (the number can still receive it), then stop everything to it."""
        try:
            await asyncio.wait_for(self.backend.send_sms(number, OPT_OUT_REPLY, purpose="notice"),
                                   CONFIRMATION_TIMEOUT)
        except Exception as exc:
            log.error("sms: opt-out confirmation to %s failed: %s", mask_number(number), type(exc).__name__)
        try:
            stored = await self.backend.opt_out(number, True)
        except BackendError as exc:
            log.error("sms: opt-out of %s failed: %s", mask_number(number), type(exc).__name__)
            return False
        log.info("sms: %s opted out", mask_number(number))
        return stored

    async def _opt_in(self, number: str) -> bool:
        try:
            stored = await self.backend.opt_out(number, False)
        except BackendError as exc:
            log.error("sms: opt-in of %s failed: %s", mask_number(number), type(exc).__name__)
            return False
        if stored:
            log.info("sms: %s opted in", mask_number(number))
            self._spawn(self.get_output_channel().send_text_message(f"{CHANNEL}:{number}", OPT_IN_REPLY))
        return stored

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)  # keep a reference until done, or the task may be collected
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # logged where it happened
        return task

    async def _handle(self, on_new_message: Callable[[UserMessage], Awaitable[Any]], app: Any, number: str,
                      text: str, sid: str, lease: Lease | None = None) -> None:
        """One turn; the lease is completed once Rasa has processed the message (or the guard
        answered it), released if the turn failed, so that Twilio's retry can take it over."""
        sender_id = f"{CHANNEL}:{number}"
        try:
            # The guard sees what the borrower typed (channels/guard.py); a numbered choice becomes
            # our own button's payload only afterwards.
            verdict = await guard.screen(sender_id, text, self.backend)
            if verdict.reply:
                await self.get_output_channel().send_text_message(sender_id, verdict.reply)
            else:
                text = await self._button_choice(app, sender_id, verdict.text)
                await on_new_message(UserMessage(text, self.get_output_channel(), sender_id, input_channel=CHANNEL,
                                                 message_id=sid, metadata={"message_sid": sid, **(verdict.metadata or {})}))
        except BaseException as exc:
            log.error("sms: message from %s not handled: %s", mask_number(number), type(exc).__name__)
            if lease is not None:
                await asyncio.shield(lease.release())
            raise
        if lease is not None:
            await lease.complete()

    @staticmethod
    async def _button_choice(app: Any, sender_id: str, text: str) -> str:
        """A reply of just "2" after numbered choices means the second button's payload."""
        m = re.fullmatch(r"\s*(\d{1,2})\s*", unicodedata.normalize("NFKC", text))
        agent = getattr(getattr(app, "ctx", None), "agent", None)
        if not m or agent is None or getattr(agent, "tracker_store", None) is None:
            return text
        tracker = await agent.tracker_store.retrieve(sender_id)
        for event in reversed(tracker.events if tracker else []):
            if isinstance(event, UserUttered):
                break
            if isinstance(event, BotUttered):
                choices = event.data.get("buttons") or event.data.get("quick_replies")
                if choices:
                    i = int(m.group(1)) - 1
                    if 0 <= i < len(choices) and choices[i].get("payload"):
                        return str(choices[i]["payload"])
                    break
        return text


def twiml() -> HTTPResponse:
    return response.text(EMPTY_TWIML, content_type="text/xml; charset=utf-8")
