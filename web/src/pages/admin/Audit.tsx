import { SafetyCertificateOutlined } from '@ant-design/icons';
import { Alert, Button, Input, Select, Tag, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { type AuditEvent, get, type Page, qs } from '../../api';
import { CursorTable, formatTime, PageTitle, stateColor, useAction } from '../../components';

interface Verify {
  ok: boolean;
  checked: number;
  headSeq: number;
  headHash: string;
  problem?: { seq: number; reason: string };
}

export function AuditPage() {
  const { t } = useTranslation();
  const [filters, setFilters] = useState<{ principal?: string; action?: string; tenantId?: string; outcome?: string }>({});
  const [result, setResult] = useState<Verify | null>(null);
  const verify = useAction(() => get<Verify>('/audit/verify'), { onSuccess: (r) => setResult(r) });
  const set = (k: keyof typeof filters) => (v: string | undefined) => setFilters((f) => ({ ...f, [k]: v || undefined }));
  return (
    <>
      <PageTitle
        title={t('nav.audit')}
        extra={
          <Button icon={<SafetyCertificateOutlined />} onClick={() => verify.mutate(undefined)} loading={verify.isPending}>
            {t('audit.verify')}
          </Button>
        }
      />
      {result ? (
        <Alert
          style={{ marginBottom: 12 }}
          showIcon
          closable
          onClose={() => setResult(null)}
          type={result.ok ? 'success' : 'error'}
          data-testid="verify-result"
          message={result.ok ? t('audit.chainOk', { n: result.checked, seq: result.headSeq }) : t('audit.chainBroken', { seq: result.problem?.seq, reason: result.problem?.reason })}
          description={<Typography.Text className="yh-mono">{result.headHash}</Typography.Text>}
        />
      ) : null}
      <CursorTable<AuditEvent>
        queryKey={['audit', filters]}
        fetch={(cursor, limit) => get<Page<AuditEvent>>(`/audit${qs({ cursor, limit, ...filters })}`)}
        rowKey="seq"
        pageSize={50}
        toolbar={
          <>
            <Input.Search allowClear placeholder={t('audit.principal')} aria-label={t('audit.principal')} onSearch={set('principal')} style={{ width: 180 }} />
            <Input.Search allowClear placeholder={t('audit.action')} aria-label={t('audit.action')} onSearch={set('action')} style={{ width: 180 }} />
            <Input.Search allowClear placeholder={t('audit.tenantId')} aria-label={t('audit.tenantId')} onSearch={set('tenantId')} style={{ width: 180 }} />
            <Select allowClear placeholder={t('audit.outcome')} aria-label={t('audit.outcome')} style={{ width: 130 }} onChange={set('outcome')} options={['success', 'failure', 'denied'].map((o) => ({ value: o, label: t(`states.${o}`) }))} />
          </>
        }
        columns={[
          { title: '#', dataIndex: 'seq' },
          { title: t('audit.time'), dataIndex: 'time', render: formatTime },
          { title: t('audit.principal'), dataIndex: 'principal' },
          { title: t('audit.action'), dataIndex: 'action' },
          { title: t('audit.resource'), dataIndex: 'resource', responsive: ['md'] },
          { title: t('audit.outcome'), dataIndex: 'outcome', render: (o: string, e) => <Tag color={stateColor[o]}>{t(`states.${o}`)}{e.errorCode ? ` (${e.errorCode})` : ''}</Tag> },
          { title: t('audit.sourceIp'), dataIndex: 'sourceIp', responsive: ['lg'] },
        ]}
      />
    </>
  );
}
