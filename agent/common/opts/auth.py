"""Options of API authentication, in [DEFAULT] as Ironic has them."""

from oslo_config import cfg

GROUP = None

OPTS = [
    cfg.StrOpt(
        "auth_strategy",
        default="noauth",
        choices=[
            ("noauth", "no authentication: everybody is an administrator (standalone install)"),
            ("http_basic", "HTTP Basic against the bcrypt htpasswd file http_basic_auth_user_file"),
            ("keystone", "Keystone tokens through keystonemiddleware.auth_token"),
        ],
        help="How requests are authenticated.",
    ),
    cfg.StrOpt(
        "http_basic_auth_user_file",
        default="/etc/kiln/htpasswd",
        help="htpasswd file with bcrypt entries (user:$2y$...) for auth_strategy=http_basic.",
    ),
    cfg.StrOpt(
        "rbac_service_project_name",
        default="service",
        help="The project whose users with the service role act as a system service "
        "(the policy rule service_role).",
    ),
]
