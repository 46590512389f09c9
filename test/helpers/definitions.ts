import type { StateMachineDefinition } from '../../workflows/definition';

/** A Map whose iterations run a Map of their own (environments, then hosts in each), for the console's tests. */
export const NESTED_MAPS: StateMachineDefinition = {
  StartAt: 'Environments',
  States: {
    Environments: {
      Type: 'Map',
      End: true,
      ItemProcessor: {
        StartAt: 'Hosts',
        States: {
          Hosts: {
            Type: 'Map',
            Next: 'Done',
            ItemProcessor: { StartAt: 'Ping', States: { Ping: { Type: 'Task', Resource: 'x', End: true } } },
          },
          Done: { Type: 'Pass', End: true },
        },
      },
    },
  },
};
