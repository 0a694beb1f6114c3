import ExportfsCommand

ExportfsCommand.main()
