"""The Top layer step's forms: hostname and users, and what makes the booted image a machine.

``UsersForm`` lays out the hostname and the new-user row and checks a new
user (name, the password typed twice); the screen keeps the users.
``MachineForm`` holds three switches over ``Settings`` (persistent ``/home``,
persistent journal, docker on the store it boots from); the core
(``wizard.toplayer.machine``) turns them into subvolumes and top-layer files at Review.
"""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Static

from wizard.common.errors import ToplayerError
from wizard.settings.config import Settings
from wizard.toplayer.machine import PERSISTENT
from wizard.toplayer.users import validate_user

SWITCHES = {
    "home": f"Persistent /home (subvolume '{PERSISTENT[0].subvolume}'): the users' homes, "
            "made from the image's /etc/skel",
    "journal": f"Persistent journal (subvolume '{PERSISTENT[1].subvolume}'): "
               "journalctl -b -1 after a reboot",
    "docker_store": "The booted system's docker uses this store: fstab mounts it, "
                    "daemon.json picks btrfs",
    "auto_update": "Update by itself: a docker pull that moves the tag runs dockerboot-update",
}
"""``Settings`` flag -> what its checkbox says."""


class MachineForm(VerticalScroll, can_focus=False):
    """Checkboxes for the machine set-up; ``applied`` puts them into ``Settings``."""

    # Not focusable itself: Tab goes straight to the checkboxes (focusing one scrolls to it).

    def __init__(self, settings: Settings | None, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.settings = settings

    def compose(self) -> ComposeResult:
        yield Static("Every machine also gets its own machine-id (made once, kept on "
                     "reconfigure) and an /etc/hosts naming its hostname.")
        for key, label in SWITCHES.items():
            value = getattr(self.settings, key) if self.settings else True
            yield Checkbox(label, value=value, id=f"machine-{key.replace('_', '-')}")

    def ticked(self, key: str) -> bool:
        """Whether the checkbox of ``Settings`` flag ``key`` is ticked."""
        return self.query_one(f"#machine-{key.replace('_', '-')}", Checkbox).value

    def applied(self, settings: Settings) -> Settings:
        """``settings`` with the flags as the checkboxes say."""
        # Named one by one, not **kwargs: mypy checks each field of replace().
        return replace(settings, home=self.ticked("home"), journal=self.ticked("journal"),
                       docker_store=self.ticked("docker_store"),
                       auto_update=self.ticked("auto_update"))


class UsersForm(VerticalScroll, can_focus=False):
    """Hostname, and a row to add a user (name, password twice, administrator or not)."""

    def __init__(self, hostname: str | None, users: Text) -> None:
        super().__init__()
        self.hostname, self.users = hostname, users

    def compose(self) -> ComposeResult:
        yield Static("Hostname")
        yield Input(value=self.hostname or "", id="hostname",
                    placeholder="e.g. desk1 (empty: keep the image's)")
        yield Static("", id="hostname-error", classes="error")
        yield Static("New user (created with the image's own useradd/chpasswd; an admin joins "
                     "the image's sudo or wheel group)")
        with Horizontal(id="user-row"):
            yield Input(placeholder="name", id="user-name")
            yield Input(placeholder="password", password=True, id="user-pw")
            yield Input(placeholder="again", password=True, id="user-pw2")
            yield Checkbox("admin", id="user-admin")
            yield Button("Add user", id="add-user", action="screen.add_user")
        yield Static("", id="user-error", classes="error")
        yield Static(self.users, id="users")

    def hostname_value(self) -> str:
        """The hostname field, trimmed (empty: keep the image's)."""
        return self.query_one("#hostname", Input).value.strip()

    def take_user(self) -> tuple[str, str, bool] | None:
        """The new user's name, password and admin flag, the row emptied for the next one.

        None when the row is not a valid user: the reason is shown under it
        (passwords that differ are cleared to be typed again).
        """
        name = self.query_one("#user-name", Input)
        pw, pw2 = self.query_one("#user-pw", Input), self.query_one("#user-pw2", Input)
        admin = self.query_one("#user-admin", Checkbox)
        error = self.query_one("#user-error", Static)
        if pw.value != pw2.value:
            error.update("The passwords do not match: type them again.")
            pw.value = pw2.value = ""
            pw.focus()
            return None
        try:
            validate_user(name.value.strip(), pw.value)
        except ToplayerError as e:
            error.update(Text(str(e)))
            return None
        user = (name.value.strip(), pw.value, admin.value)
        name.value = pw.value = pw2.value = ""
        admin.value = False
        error.update("")
        name.focus()  # ready for the next user
        return user

    def show_users(self, users: Text) -> None:
        self.query_one("#users", Static).update(users)
