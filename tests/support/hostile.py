"""Values a shell would run as code if it read them: a value that reaches a command must stay one argument."""

# Each would run code if the shell read it: a command substitution, backticks, a second command, a second line.
HOSTILE = "x'y\"z $(touch PWNED1) `touch PWNED2`; touch PWNED3 && touch PWNED4 \\\n touch PWNED5 #"
# File names anything on a host could have chosen: code for a shell, options for a program, a glob, a second line.
HOSTILE_FILE_NAMES = (
    "x;touch PWNED_$(id -u);#-openclaw-backup.tar.gz",
    "a'b\"c`touch PWNED`",
    "$(touch PWNED)",
    "-rf",
    "--help",
    "new\nline",
    "sp ace && touch PWNED",
    "*",
)
