@python "%~dp0relay.py" %*
