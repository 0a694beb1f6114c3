import BridgeCommand

BridgeCommand.main()
