"""NativeAuthenticator with handlers that work under JupyterHub 5 and 6.

The handlers of NativeAuthenticator 1.3.0 (its latest release) predate two changes of JupyterHub:

- JupyterHub 6 removed ``BaseHandler.statsd``; NativeAuthenticator's login POST still times the
  authentication with it, so every login attempt fails with an AttributeError (500).
- Since JupyterHub 5.3, an error on a login form submission (an expired XSRF token, any 500) is
  shown as the login form with the error message: ``write_error`` renders ``error.html``
  synchronously and ``LoginHandler.render_template`` sends that to ``_render(sync=True, ...)``.
  NativeAuthenticator's ``_render`` takes no ``sync`` (a TypeError inside ``write_error``: an
  empty error page), always renders asynchronously, and its templates are only known to the
  hub's asynchronous Jinja environment, not to the synchronous one.

The classes here subclass NativeAuthenticator's and override only that. Configured from
jupyterhub_config.py::

    c.JupyterHub.authenticator_class = "jhub_docker.nativeauth.JhubNativeAuthenticator"

The ``c.NativeAuthenticator.*`` and ``c.Authenticator.*`` settings apply to it as well.
"""

from __future__ import annotations

import weakref

from jinja2 import ChoiceLoader, FileSystemLoader, TemplateNotFound
from nativeauthenticator import handlers
from nativeauthenticator.nativeauthenticator import NativeAuthenticator
from tornado.escape import url_escape
from tornado.httputil import url_concat

# The Jinja environments of the hub (asynchronous and synchronous) that find NativeAuthenticator's templates.
_ENVS_WITH_TEMPLATES: weakref.WeakSet = weakref.WeakSet()


class _NoStatsd:
    """Stands in for the statsd client of JupyterHub < 6: a timer that records nothing."""

    def timer(self, _name: str) -> _NoStatsd:
        return self

    def start(self) -> _NoStatsd:
        return self

    def stop(self, send: bool = True) -> _NoStatsd:  # pylint: disable=unused-argument
        return self


class TemplatesMixin:
    """Makes NativeAuthenticator's templates known to both Jinja environments of this hub.

    NativeAuthenticator's LocalBase adds its template folder to ``settings["jinja2_env"]`` only,
    and once per process (a class attribute), whatever the application. JupyterHub >= 5.3 also
    renders synchronously (error pages, and through them the login form) with
    ``settings["jinja2_env_sync"]``, which then cannot find native-login.html.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for key in ("jinja2_env", "jinja2_env_sync"):
            env = self.settings.get(key)
            if env is None or env in _ENVS_WITH_TEMPLATES:
                continue
            try:
                env.get_template("native-login.html")
            except TemplateNotFound:
                # After the hub's own loaders, as LocalBase does: the hub's page.html stays the base page.
                env.loader = ChoiceLoader([env.loader, FileSystemLoader([handlers.TEMPLATE_DIR])])
            _ENVS_WITH_TEMPLATES.add(env)


class LoginHandler(TemplatesMixin, handlers.LoginHandler):
    """NativeAuthenticator's /hub/login, without statsd and with the synchronous rendering of JupyterHub >= 5.3."""

    @property
    def statsd(self):
        """The hub's statsd client (JupyterHub < 6) or one that records nothing.

        NativeAuthenticator's post() times the authentication with self.statsd and never sends the
        timing (stop(send=False)); JupyterHub 6 has neither BaseHandler.statsd nor the setting.
        """
        return self.settings.get("statsd", _NoStatsd())

    def _render(self, login_error=None, username=None, sync=False, **kwargs):
        """The login form, as NativeAuthenticator renders it, also synchronously.

        JupyterHub >= 5.3 shows an error on a form submission as the login form: its
        LoginHandler.render_template calls _render(sync=True, login_error=..., username=...,
        status_code=..., message=..., ...) from write_error, which needs a string back. The extra
        error-page values go to the template, as JupyterHub's own _render passes them.
        """
        return self.render_template(
            "native-login.html",
            sync=sync,
            next=url_escape(self.get_argument("next", default="")),
            username=username,
            login_error=login_error,
            custom_html=self.authenticator.custom_html,
            login_url=self.settings["login_url"],
            enable_signup=self.authenticator.enable_signup,
            two_factor_auth=self.authenticator.allow_2fa,
            authenticator_login_url=url_concat(
                self.authenticator.login_url(self.hub.base_url),
                {"next": self.get_argument("next", "")},
            ),
            **kwargs,
        )


class SignUpHandler(TemplatesMixin, handlers.SignUpHandler):
    """NativeAuthenticator's /hub/signup, finding its templates in every hub of the process."""


class AuthorizationAreaHandler(TemplatesMixin, handlers.AuthorizationAreaHandler):
    """NativeAuthenticator's /hub/authorize, finding its templates in every hub of the process."""


class EmailAuthorizationHandler(TemplatesMixin, handlers.EmailAuthorizationHandler):
    """NativeAuthenticator's /hub/confirm/<slug>, finding its templates in every hub of the process."""


class ChangePasswordHandler(TemplatesMixin, handlers.ChangePasswordHandler):
    """NativeAuthenticator's /hub/change-password, finding its templates in every hub of the process."""


class ChangePasswordAdminHandler(TemplatesMixin, handlers.ChangePasswordAdminHandler):
    """NativeAuthenticator's /hub/change-password/<user>, finding its templates in every hub of the process."""


# NativeAuthenticator's handler -> the one here; the others (redirects only) are kept as they are.
HANDLERS = {
    handlers.LoginHandler: LoginHandler,
    handlers.SignUpHandler: SignUpHandler,
    handlers.AuthorizationAreaHandler: AuthorizationAreaHandler,
    handlers.EmailAuthorizationHandler: EmailAuthorizationHandler,
    handlers.ChangePasswordHandler: ChangePasswordHandler,
    handlers.ChangePasswordAdminHandler: ChangePasswordAdminHandler,
}


class JhubNativeAuthenticator(NativeAuthenticator):
    """NativeAuthenticator serving the handlers above; its settings are NativeAuthenticator's."""

    def get_handlers(self, app):
        """NativeAuthenticator's URLs, each with the handler above that replaces its own."""
        return [(url, HANDLERS.get(handler, handler)) for url, handler in super().get_handlers(app)]
