"""The debug page of the critical attack showed the Kubernetes client's `authorization: Bearer
<token>` header from a frame's local variables. Whatever raises inside a real Kubernetes call,
the technical 500 page, the error e-mail and the log lines show no credential: not the token
of a token-type cluster (decrypted or encrypted), not the kubeconfig's token, not an Apollo API
key. Each test first shows the credential on Django's stock reporter (the attack is real),
then its absence on Apollo's."""

import io
import logging
import sys
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.utils.log import AdminEmailHandler, log_response
from django.views.debug import get_default_exception_reporter_filter, technical_500_response
from kubernetes import client

from environments import kube
from environments.models import Cluster
from kubesim.testing import KubesimHandle
from tests import factories
from tests.kubeenv import kubesim_cluster

pytestmark = pytest.mark.django_db(transaction=True)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType]
STOCK = {
    "DEFAULT_EXCEPTION_REPORTER_FILTER": "django.views.debug.SafeExceptionReporterFilter",
    "DEFAULT_EXCEPTION_REPORTER": "django.views.debug.ExceptionReporter",
}


@pytest.fixture(params=["token", "kubeconfig"])
def cluster(request: pytest.FixtureRequest, kubesim: KubesimHandle) -> Iterator[Cluster]:
    if request.param == "token":
        yield kubesim_cluster(kubesim)
        return
    yield Cluster.objects.create(
        name="kubesim-kubeconfig",
        connection=Cluster.Connection.KUBECONFIG,
        kubeconfig_path=str(kubesim.kubeconfig_path),
        kubeconfig_context="kubesim",
    )


def _dotdot_inside_kubernetes(cluster: Cluster, namespace: str) -> ExcInfo:
    """The attack itself, on the official client: pod `..` is the namespace's URL, whose
    answer (a Namespace) fails to parse as a Pod, deep in the client's frames."""
    core = client.CoreV1Api(kube.api_client(cluster))
    try:
        core.read_namespaced_pod("..", namespace)
    except Exception:
        exc_type, exc, tb = sys.exc_info()
        assert exc_type is not None
        assert exc is not None
        assert tb is not None
        return exc_type, exc, tb
    raise AssertionError("reading pod '..' should have failed")


def _message_carrying(cluster: Cluster, namespace: str, api_key: str) -> ExcInfo:
    """An exception whose message and locals carry every kind of credential."""
    stored = cluster.token_ciphertext or "gAAAAABnot-a-real-ciphertext-but-shaped-like-one"
    secret = next(iter(kube.api_client(cluster).configuration.api_key.values()))
    try:
        headers = {"authorization": secret, "x-apollo-key": api_key, "stored": stored}
        raise RuntimeError(f"cluster call failed with {headers}")
    except RuntimeError:
        exc_type, exc, tb = sys.exc_info()
        assert exc_type is not None
        assert exc is not None
        assert tb is not None
        return exc_type, exc, tb


def _request(mallory: User, api_key: str) -> Any:
    request = RequestFactory().get(
        "/environments/staging/logs/",
        {"pod": ".."},
        HTTP_AUTHORIZATION=f"Token {api_key}",
        HTTP_X_FORWARDED_AUTH=f"Bearer {api_key}",
    )
    request.user = mallory
    return request


def _secrets(kubesim: KubesimHandle, cluster: Cluster, api_key: str) -> list[str]:
    return [s for s in (kubesim.token, cluster.token_ciphertext, api_key) if s]


@pytest.mark.parametrize("raise_", [_dotdot_inside_kubernetes, _message_carrying])
def test_the_technical_500_page_shows_no_credential(
    mallory: User,
    kubesim: KubesimHandle,
    kubesim_namespace: str,
    cluster: Cluster,
    raise_: Any,
    settings: Any,
) -> None:
    settings.DEBUG = True
    api_key = factories.token_for(mallory)
    args = (cluster, kubesim_namespace, api_key)[: raise_.__code__.co_argcount]
    exc_info = raise_(*args)
    request = _request(mallory, api_key)
    # Django caches the default filter on first use (lru_cache, not reset by override_settings):
    # clear it so that each page gets the filter its settings name, whatever ran before.
    with override_settings(**STOCK):
        get_default_exception_reporter_filter.cache_clear()  # type: ignore[attr-defined]
        stock = technical_500_response(request, *exc_info).content.decode()
    get_default_exception_reporter_filter.cache_clear()  # type: ignore[attr-defined]
    assert kubesim.token in stock  # the leak of the attack, on Django's own reporter
    page = technical_500_response(request, *exc_info).content.decode()
    for secret in _secrets(kubesim, cluster, api_key):
        assert secret not in page
    assert "********************" in page


def test_the_error_email_and_the_log_lines_show_no_credential(
    mallory: User,
    kubesim: KubesimHandle,
    kubesim_namespace: str,
    cluster: Cluster,
    settings: Any,
) -> None:
    settings.ADMINS = [("ops", "ops@example.com")]
    api_key = factories.token_for(mallory)
    _dotdot_inside_kubernetes(cluster, kubesim_namespace)  # the client now holds the token
    exc_info = _message_carrying(cluster, kubesim_namespace, api_key)
    request = _request(mallory, api_key)
    stream = io.StringIO()
    printed = logging.StreamHandler(stream)
    printed.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    emailed = AdminEmailHandler(include_html=True)
    logger = logging.getLogger("django.request")
    logger.addHandler(printed)
    logger.addHandler(emailed)
    try:
        # What Django's handler of an uncaught exception logs for a 500.
        log_response(
            "Internal Server Error: %s",
            request.path,
            response=HttpResponse(status=500),
            request=request,
            exception=exc_info[1],
        )
    finally:
        logger.removeHandler(printed)
        logger.removeHandler(emailed)
    printed_text = stream.getvalue()
    assert "Traceback" in printed_text
    assert "cluster call failed" in printed_text
    # Ours and Django's own mail_admins handler (DEBUG is off in tests).
    assert mail.outbox
    texts = [printed_text]
    for email in mail.outbox:
        texts += [str(email.subject), str(email.body)]
        texts += [str(content) for content, _ in getattr(email, "alternatives", [])]
    for text in texts:
        for secret in _secrets(kubesim, cluster, api_key):
            assert secret not in text
