import {
  CloudWatchClient,
  DescribeAlarmsCommand,
  type DescribeAlarmsCommandOutput,
} from "@aws-sdk/client-cloudwatch";
import {
  awsClientSettings,
  describeAwsError,
  describeEndpoint,
  type AwsClientSettings,
} from "./client";

/**
 * The stage's CloudWatch alarms as a rollback signal (what CodeDeploy does for
 * ECS blue/green): DescribeAlarms on the candidate slot's alarm names, taken
 * from the stack's outputs. An alarm in ALARM fails the current step.
 */

export interface FiringAlarm {
  name: string;
  reason: string;
  /** When the alarm entered ALARM (ISO-8601), as CloudWatch reports it. */
  since?: string;
}

export interface AlarmStates {
  firing: FiringAlarm[];
  /** Names from the outputs that CloudWatch does not know: the signal is gone. */
  missing: string[];
}

export class AlarmCheckError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AlarmCheckError";
  }
}

/** DescribeAlarms takes at most 100 names per call. */
const MAX_NAMES = 100;

export interface StageAlarmsOptions {
  settings: AwsClientSettings;
  client?: CloudWatchClient;
}

export class StageAlarms {
  private readonly client: CloudWatchClient;

  constructor(private readonly options: StageAlarmsOptions) {
    this.client = options.client ?? new CloudWatchClient(options.settings);
  }

  static forRegion(region: string, env?: Record<string, string | undefined>): StageAlarms {
    return new StageAlarms({ settings: awsClientSettings(region, env) });
  }

  async states(names: readonly string[]): Promise<AlarmStates> {
    const found = new Map<string, FiringAlarm | undefined>();
    for (let i = 0; i < names.length; i += MAX_NAMES) {
      const batch = names.slice(i, i + MAX_NAMES);
      let nextToken: string | undefined;
      do {
        let page: DescribeAlarmsCommandOutput;
        try {
          page = await this.client.send(
            new DescribeAlarmsCommand({
              AlarmNames: batch,
              AlarmTypes: ["MetricAlarm", "CompositeAlarm"],
              NextToken: nextToken,
            }),
          );
        } catch (err) {
          throw new AlarmCheckError(
            `DescribeAlarms ${batch.join(", ")}: ${describeAwsError(err, describeEndpoint(this.options.settings, "CloudWatch"))}`,
            { cause: err },
          );
        }
        for (const alarm of [...(page.MetricAlarms ?? []), ...(page.CompositeAlarms ?? [])]) {
          if (!alarm.AlarmName) continue;
          found.set(
            alarm.AlarmName,
            alarm.StateValue === "ALARM"
              ? {
                  name: alarm.AlarmName,
                  reason: alarm.StateReason ?? "(no reason given)",
                  ...(alarm.StateUpdatedTimestamp
                    ? { since: alarm.StateUpdatedTimestamp.toISOString() }
                    : {}),
                }
              : undefined,
          );
        }
        nextToken = page.NextToken;
      } while (nextToken);
    }
    return {
      firing: names.map((n) => found.get(n)).filter((a): a is FiringAlarm => !!a),
      missing: names.filter((n) => !found.has(n)),
    };
  }

  destroy(): void {
    this.client.destroy();
  }
}

/** The rollback reason for firing alarms: each alarm's name and CloudWatch's reason. */
export function alarmRollbackReason(firing: readonly FiringAlarm[]): string {
  return firing
    .map((a) => `alarm ${a.name} is in ALARM${a.since ? ` since ${a.since}` : ""}: ${a.reason}`)
    .join("; ");
}
