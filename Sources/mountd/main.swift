import MountdCommand

MountdCommand.main()
