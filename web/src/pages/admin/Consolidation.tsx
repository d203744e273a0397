import { ThunderboltOutlined } from '@ant-design/icons';
import { useQuery } from '@tanstack/react-query';
import { Button, Card, Form, InputNumber, Modal, Space, Statistic, Switch, Table, Tag } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, type ConsolidationReport, get } from '../../api';
import { formatTime, PageTitle, QueryError, useAction } from '../../components';

const STATUS_COLOR: Record<string, string> = { planned: 'blue', running: 'processing', completed: 'green' };

/** Energy-saving consolidation: run (or plan) one, and the reports of past runs. */
export function ConsolidationPage() {
  const { t } = useTranslation();
  const [open, setOpen] = useState(false);
  const [form] = Form.useForm();
  const reports = useQuery({
    queryKey: ['consolidation'],
    queryFn: () => get<{ items: ConsolidationReport[] }>('/consolidation/reports?limit=50'),
    refetchInterval: 3000,
  });
  const run = useAction(
    (v: { dryRun: boolean; maxMigrations: number; cpu: number; ram: number }) =>
      api<ConsolidationReport>('POST', '/consolidation/run', {
        dryRun: v.dryRun,
        maxMigrations: v.maxMigrations,
        headroom: { cpu: v.cpu / 100, ram: v.ram / 100 },
      }),
    {
      invalidate: [['consolidation'], ['migrations'], ['hosts']],
      success: (r) => t('consolidation.started', { moves: r.plan.moves.length, hosts: r.plan.freedHosts.length }),
      onSuccess: () => setOpen(false),
    },
  );
  const latest = reports.data?.items.find((r) => r.status !== 'planned');
  return (
    <>
      <PageTitle
        title={t('nav.consolidation')}
        extra={
          <Button type="primary" icon={<ThunderboltOutlined />} onClick={() => setOpen(true)}>
            {t('consolidation.run')}
          </Button>
        }
      />
      <QueryError error={reports.error} />
      {latest ? (
        <Card size="small" style={{ marginBottom: 16 }} title={t('consolidation.latest')}>
          <Space size="large" wrap>
            <Statistic title={t('consolidation.hostsFreed')} value={latest.hostsFreed.length} />
            <Statistic title={t('consolidation.migrations')} value={`${latest.migrationsCompleted} / ${latest.migrations.length}`} />
            <Statistic title={t('consolidation.watts')} value={`${Math.round(latest.wattsBefore)} → ${Math.round(latest.wattsAfter)} W`} />
            <Statistic title={t('consolidation.saved')} value={latest.kwhPerDaySaved} suffix={t('consolidation.kwhPerDay')} />
          </Space>
        </Card>
      ) : null}
      <Table<ConsolidationReport>
        size="middle"
        rowKey="id"
        scroll={{ x: 'max-content' }}
        loading={reports.isLoading}
        dataSource={reports.data?.items ?? []}
        pagination={{ pageSize: 20 }}
        locale={{ emptyText: t('consolidation.empty') }}
        expandable={{
          expandedRowRender: (r) => (
            <Table
              size="small"
              rowKey="instanceId"
              pagination={false}
              dataSource={r.plan.moves}
              columns={[
                { title: t('migrations.instance'), dataIndex: 'instanceId' },
                { title: t('migrations.from'), dataIndex: 'from' },
                { title: t('migrations.to'), dataIndex: 'to' },
              ]}
              footer={() =>
                r.plan.skipped.length ? (
                  <div>
                    {r.plan.skipped.map((s) => (
                      <div key={s.host}>
                        {s.host}: {s.reason}
                      </div>
                    ))}
                  </div>
                ) : null
              }
            />
          ),
        }}
        columns={[
          { title: t('consolidation.when'), dataIndex: 'createdAt', render: formatTime },
          {
            title: t('consolidation.status'),
            render: (_, r) => <Tag color={STATUS_COLOR[r.status]}>{t(`consolidation.statuses.${r.status}`)}</Tag>,
          },
          { title: t('consolidation.moves'), render: (_, r) => r.plan.moves.length },
          { title: t('consolidation.hostsFreed'), render: (_, r) => (r.dryRun ? r.plan.freedHosts.length : r.hostsFreed.length) },
          { title: t('consolidation.hostsOn'), render: (_, r) => `${r.plan.hostsOnBefore} → ${r.plan.hostsOnAfter}`, responsive: ['md'] },
          { title: t('consolidation.watts'), render: (_, r) => `${Math.round(r.wattsBefore)} → ${Math.round(r.wattsAfter)}`, responsive: ['md'] },
          { title: t('consolidation.saved'), render: (_, r) => `${r.kwhPerDaySaved} ${t('consolidation.kwhPerDay')}` },
          { title: t('consolidation.requestedBy'), dataIndex: 'requestedBy', responsive: ['lg'] },
        ]}
      />
      <Modal
        open={open}
        title={t('consolidation.run')}
        onCancel={() => setOpen(false)}
        onOk={() => form.submit()}
        okText={t('consolidation.go')}
        cancelText={t('common.cancel')}
        confirmLoading={run.isPending}
      >
        <Form form={form} layout="vertical" initialValues={{ dryRun: true, maxMigrations: 10, cpu: 20, ram: 20 }} onFinish={(v) => run.mutate(v)}>
          <Form.Item label={t('consolidation.dryRun')} name="dryRun" valuePropName="checked" extra={t('consolidation.dryRunHint')}>
            <Switch />
          </Form.Item>
          <Form.Item label={t('consolidation.maxMigrations')} name="maxMigrations" rules={[{ required: true }]}>
            <InputNumber min={0} max={1000} />
          </Form.Item>
          <Form.Item label={t('consolidation.cpuHeadroom')} name="cpu" rules={[{ required: true }]}>
            <InputNumber min={0} max={90} addonAfter="%" />
          </Form.Item>
          <Form.Item label={t('consolidation.ramHeadroom')} name="ram" rules={[{ required: true }]}>
            <InputNumber min={0} max={90} addonAfter="%" />
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}
